"""Soak: N concurrent answers for M minutes, 10% of clients reconnecting 1-3 times.

Reports lost, duplicated and reordered chunks and stored-vs-streamed mismatches, all
of which must be 0. Runs against one instance on SQLite, or with `--redis` against two
instances on PostgreSQL + Redis with reconnects going to the other instance.

    .venv/bin/python -m tests.soak --streams 100 --minutes 5 [--redis]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.conftest import MODELS_TOML, drop_pg_database, fresh_pg_database
from tests.fakes.upstream import FakeUpstream, fake_reply
from tests.support.client import Socket
from tests.support.server import serving


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
                turn = {"message_id": mid, "resume_from": len(ids)}
                tally.reconnects += 1
            events = await ws.ask(sid, limit=cut_after, timeout=60, **turn)
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


async def soak(urls: list[str], streams: int, seconds: float, seed: int) -> Tally:
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
                await one_answer(urls, sessions[w % len(sessions)], counter, rng, tally)
            except Exception as exc:  # a client-side failure is a finding, not a crash
                tally.errors.append(f"{type(exc).__name__}: {exc}")

    await asyncio.gather(*(worker(w) for w in range(streams)))
    return tally


def run(streams: int, seconds: float, redis: bool, seed: int = 1) -> Tally:
    with ExitStack() as stack:
        tmp_path = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        fake = stack.enter_context(FakeUpstream(delay_ms=20))
        models = tmp_path / "models.toml"
        models.write_text(MODELS_TOML)
        extra = {"VEDIKA_DAILY_CREDITS": "1000000", "VEDIKA_LOG_LEVEL": "warning"}
        db = None  # one instance on SQLite (tmp_path/v.db)
        names = ["a"]
        if redis:  # two instances on a fresh PostgreSQL database and Redis
            db = fresh_pg_database()
            stack.callback(drop_pg_database, db)
            extra["VEDIKA_REDIS_URL"] = "redis://127.0.0.1:6379/0"
            names = ["a", "b"]
        servers = [
            stack.enter_context(serving(tmp_path, fake, models, db=db, log=f"{n}.log", **extra))
            for n in names
        ]
        return asyncio.run(soak([s.ws_url for s in servers], streams, seconds, seed))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--redis", action="store_true", help="two instances over Redis")
    args = parser.parse_args()
    tally = run(args.streams, args.minutes * 60, args.redis)
    print(json.dumps(tally.__dict__ | {"errors": tally.errors[:20]}, indent=2))
    return 0 if tally.clean() else 1


if __name__ == "__main__":
    sys.exit(main())
