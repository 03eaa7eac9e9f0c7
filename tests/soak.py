"""Soak: N concurrent answers for M minutes, 10% of clients reconnecting 1-3 times.

Reports lost, duplicated and reordered chunks and stored-vs-streamed mismatches, all
of which must be 0. Runs against one instance on SQLite, or with `--redis` against two
instances on PostgreSQL + Redis with reconnects going to the other instance, or with
`--nginx` against two such instances behind nginx (docs/deployment.md's configuration,
tests/support/nginx.py), one of them SIGKILLed every `--kill-every` seconds and started
again: clients reconnect through nginx and resume. An answer cut by a kill is correct
when it ends with one terminal event (`interrupted`) and the client's text is the
conversation's stored text.

    .venv/bin/python -m tests.soak --streams 100 --minutes 5 [--redis | --nginx]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import random
import signal
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.conftest import MODELS_TOML, drop_pg_database, fresh_pg_database
from tests.fakes.upstream import FakeUpstream, fake_reply
from tests.support.client import Socket
from tests.support.nginx import Nginx
from tests.support.reconnecting import follow
from tests.support.server import VedikaServer, serving


@dataclass
class Tally:
    answers: int = 0
    chunks: int = 0
    reconnects: int = 0
    lost: int = 0
    duplicated: int = 0
    reordered: int = 0
    wrong_text: int = 0
    stored_mismatch: int = 0
    kills: int = 0  # --nginx: instances SIGKILLed
    interrupted: int = 0  # answers cut by a kill (correct ones: see the module's doc)
    errors: list[str] = field(default_factory=list)

    def clean(self) -> bool:
        return not (
            self.lost
            or self.duplicated
            or self.reordered
            or self.wrong_text
            or self.stored_mismatch
            or self.errors
        )


async def one_answer(urls: list[str], sid: str, i: int, rng: random.Random, tally: Tally) -> None:
    prompt = f"soak answer {i} {rng.randint(0, 10**6)}"
    expected = "".join(fake_reply("fake-steady", prompt))
    reconnects = rng.randint(1, 3) if rng.random() < 0.10 else 0
    home = rng.randrange(len(urls))
    ids: list[int] = []
    text: list[str] = []
    done: dict | None = None
    cid = mid = None
    attempt = 0
    while done is None:
        url = urls[(home + attempt) % len(urls)]
        cut_after = rng.randint(1, 8) if attempt < reconnects else None
        async with Socket(url) as ws:
            if mid is None:
                turn: dict[str, str | int] = {"message": prompt, "model_id": "fake-steady"}
            else:
                # After the last chunk seen (a replay from the store numbers its one
                # chunk as the answer's last: not the count of chunks seen).
                turn = {"message_id": mid, "resume_from": ids[-1] if ids else 0}
                tally.reconnects += 1
            events = await ws.ask(sid, limit=cut_after, timeout=60, **turn)
            if events[-1]["type"] == "content_chunk":
                # Cut: the network drops the socket. A closing handshake here waited
                # 10 s (websockets' close_timeout) for the frames still in flight.
                ws.ws.transport.abort()
        for event in events:
            mid = event.get("message_id") or mid
            cid = event.get("conversation_id") or cid
            if event["type"] == "content_chunk":
                ids.append(event["chunk_id"])
                text.append(event["content"])
        if events[-1]["type"] != "content_chunk":  # not cut after `cut_after` chunks: the end
            done = events[-1]
        attempt += 1
    tally.answers += 1
    tally.chunks += len(ids)
    want = list(range(1, len(ids) + 1))
    if ids != want:
        if len(set(ids)) != len(ids):
            tally.duplicated += len(ids) - len(set(ids))
        elif sorted(ids) != ids:
            tally.reordered += 1
        else:
            tally.lost += len(set(want) - set(ids))
    if done["type"] != "stream_complete":
        tally.errors.append(f"{mid}: {done.get('code')}: {done.get('error')}")
        return
    if "".join(text) != done["full_response"] or done["full_response"] != expected:
        tally.wrong_text += 1
    async with httpx.AsyncClient(
        base_url=urls[0].replace("ws://", "http://")[:-3],
        headers={"Authorization": f"Bearer {sid}"},
    ) as http:
        conv = (await http.get(f"/ai/conversations/{cid}")).json()
    stored = next(m for m in conv["messages"] if m["message_id"] == mid)
    if stored["content"] != done["full_response"] or stored["status"] != "complete":
        tally.stored_mismatch += 1


async def one_answer_via_proxy(
    url: str, sid: str, i: int, rng: random.Random, tally: Tally
) -> None:
    """One answer through the proxy at `url` (a socket URL), following it across the
    instance kills; 10% of clients also drop their socket 1-3 times themselves."""
    prompt = f"soak answer {i} {rng.randint(0, 10**6)}"
    expected = "".join(fake_reply("fake-steady", prompt))
    cuts = rng.randint(1, 3) if rng.random() < 0.10 else 0
    out = await follow(
        url,
        sid,
        message=prompt,
        client_message_id=str(uuid.uuid4()),
        model_id="fake-steady",
        cuts=cuts,
        cut_after=rng.randint(1, 8),
        patience=120,
    )
    tally.answers += 1
    tally.chunks += out.chunks
    tally.reconnects += out.connections - 1
    ids = [e["chunk_id"] for e in out.events if e["type"] == "content_chunk"]
    if ids != list(range(1, len(ids) + 1)):
        if len(set(ids)) != len(ids):
            tally.duplicated += len(ids) - len(set(ids))
        elif sorted(ids) != ids:
            tally.reordered += 1
        else:
            tally.lost += len(set(range(1, max(ids) + 1)) - set(ids))
    types = [e["type"] for e in out.events]
    done = out.terminal
    cid, mid = out.ids()
    # No `stream_start` is right for one answer: reaped before its slow instance
    # published anything (the fence refused its first event), it ends `interrupted`
    # with no text, as stored.
    reaped_unstarted = (
        "stream_start" not in types
        and done is not None
        and done.get("code") == "interrupted"
        and "content_chunk" not in types
    )
    if done is None or (types.count("stream_start") != 1 and not reaped_unstarted):
        code = done.get("code") if done else None
        tally.errors.append(f"{mid}: {code}: events {types[:3]}...{types[-3:]}")
        return
    if sum(t in ("stream_complete", "stream_error") for t in types) != 1:
        tally.duplicated += 1  # two terminal events
    if done["type"] == "stream_complete":
        status = "complete"
        if out.text != done["full_response"] or out.text != expected:
            tally.wrong_text += 1
    elif done.get("code") == "interrupted":
        status = "interrupted"
        tally.interrupted += 1
        if not expected.startswith(out.text):
            tally.wrong_text += 1
    else:
        tally.errors.append(f"{mid}: {done.get('code')}: {done.get('error')}")
        return
    http_base = url.replace("ws://", "http://")[: -len("/ws")]
    async with httpx.AsyncClient(base_url=http_base, timeout=30) as http:
        for _ in range(20):  # a request that met a dying instance is not retried by nginx
            try:
                r = await http.get(
                    f"/ai/conversations/{cid}", headers={"Authorization": f"Bearer {sid}"}
                )
            except httpx.TransportError:
                # Killed after its headers went out: nginx passes on the headers and then
                # cuts the body (RemoteProtocolError). A GET is safe to send again.
                await asyncio.sleep(0.5)
                continue
            if r.status_code == 200:
                break
            await asyncio.sleep(0.5)
    stored = next(m for m in r.json()["messages"] if m["message_id"] == mid)
    if stored["content"] != out.text or stored["status"] != status:
        tally.stored_mismatch += 1
        if len(tally.errors) < 50:
            tally.errors.append(
                f"{mid}: stored {stored['status']} {len(stored['content'])} chars, "
                f"streamed {status} {len(out.text)} chars"
            )


async def soak(
    urls: list[str], streams: int, seconds: float, seed: int, proxied: bool = False
) -> Tally:
    rng = random.Random(seed)
    tally = Tally()
    http_base = urls[0].replace("ws://", "http://")[:-3]
    async with httpx.AsyncClient(base_url=http_base) as http:
        sessions = [
            (await http.post("/auth/device-session", json={})).json()["session_id"]
            for _ in range(max(1, streams // 10))
        ]
    deadline = time.monotonic() + seconds
    counter = 0

    async def worker(w: int) -> None:
        nonlocal counter
        while time.monotonic() < deadline:
            counter += 1
            try:
                if proxied:
                    await one_answer_via_proxy(
                        urls[0], sessions[w % len(sessions)], counter, rng, tally
                    )
                else:
                    await one_answer(urls, sessions[w % len(sessions)], counter, rng, tally)
            except Exception as exc:  # a client-side failure is a finding, not a crash
                tally.errors.append(f"{type(exc).__name__}: {exc}")

    await asyncio.gather(*(worker(w) for w in range(streams)))
    return tally


async def chaos(servers: list[VedikaServer], tally: Tally, every: float, seconds: float) -> None:
    """Every `every` seconds, SIGKILL one instance (in turn) and start it again."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    victim = 0
    while loop.time() + every < deadline:
        await asyncio.sleep(every)
        srv = servers[victim % len(servers)]
        victim += 1
        await loop.run_in_executor(None, srv.stop, signal.SIGKILL)
        tally.kills += 1
        await asyncio.sleep(1.0)  # nginx meets a dead instance meanwhile
        # A loaded machine can take long to start it: slower is fewer kills, not a crash.
        await loop.run_in_executor(None, functools.partial(srv.start, 120.0))


async def soak_with_kills(
    url: str, servers: list[VedikaServer], streams: int, seconds: float, seed: int, every: float
) -> Tally:
    tally_box: list[Tally] = []

    async def clients() -> None:
        tally_box.append(await soak([url], streams, seconds, seed, proxied=True))

    kills = Tally()
    await asyncio.gather(clients(), chaos(servers, kills, every, seconds))
    tally = tally_box[0]
    tally.kills = kills.kills
    return tally


# --nginx: the reaper settles a killed instance's answers this soon (tests/test_proxy.py).
PROXY_ENV = {
    "VEDIKA_TRUSTED_PROXIES": "127.0.0.1",
    "VEDIKA_HEARTBEAT_STALE_SECONDS": "5",
    "VEDIKA_REAPER_INTERVAL": "0.5",
}


def run(
    streams: int,
    seconds: float,
    redis: bool,
    seed: int = 1,
    *,
    nginx: bool = False,
    kill_every: float = 20.0,
    logs: Path | None = None,
) -> Tally:
    with ExitStack() as stack:
        # --logs keeps the servers' logs (at info) for reading a failure afterwards.
        if logs is not None:
            logs.mkdir(parents=True, exist_ok=True)
        tmp_path = logs or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        fake = stack.enter_context(FakeUpstream(delay_ms=20))
        models = tmp_path / "models.toml"
        models.write_text(MODELS_TOML)
        level = "info" if logs is not None else "warning"
        extra = {"VEDIKA_DAILY_CREDITS": "1000000", "VEDIKA_LOG_LEVEL": level}
        db = None  # one instance on SQLite (tmp_path/v.db)
        names = ["a"]
        if redis or nginx:  # two instances on a fresh PostgreSQL database and Redis
            db = fresh_pg_database()
            stack.callback(drop_pg_database, db)
            extra["VEDIKA_REDIS_URL"] = "redis://127.0.0.1:6379/0"
            names = ["a", "b"]
        if nginx:
            extra |= PROXY_ENV
        servers = [
            stack.enter_context(serving(tmp_path, fake, models, db=db, log=f"{n}.log", **extra))
            for n in names
        ]
        if not nginx:
            return asyncio.run(soak([s.ws_url for s in servers], streams, seconds, seed))
        for srv in servers:  # restarts after a kill: the schema is there (production)
            srv.args = ("--no-migrate",)
        proxy = stack.enter_context(
            Nginx(tmp_path / "nginx", [f"127.0.0.1:{s.port}" for s in servers])
        )
        return asyncio.run(
            soak_with_kills(proxy.ws_url, servers, streams, seconds, seed, kill_every)
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--minutes", type=float, default=5)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--redis", action="store_true", help="two instances over Redis")
    mode.add_argument(
        "--nginx", action="store_true", help="two instances behind nginx, one killed at times"
    )
    parser.add_argument(
        "--kill-every", type=float, default=20, help="--nginx: seconds between kills"
    )
    parser.add_argument("--logs", type=Path, help="keep the servers' logs (info) here")
    args = parser.parse_args()
    tally = run(
        args.streams,
        args.minutes * 60,
        args.redis,
        nginx=args.nginx,
        kill_every=args.kill_every,
        logs=args.logs,
    )
    print(json.dumps(tally.__dict__ | {"errors": tally.errors[:20]}, indent=2))
    return 0 if tally.clean() else 1


if __name__ == "__main__":
    sys.exit(main())
