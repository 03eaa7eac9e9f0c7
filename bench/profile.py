"""Profile `vedika serve` under a steady streaming load with py-spy.

    .venv/bin/python -m bench.profile [--streams 50] [--seconds 20] [--coalesce-ms 0]
        [--redis redis://127.0.0.1:6379/0 | --floor]
    .venv/bin/python -m bench.profile --call list_50 [--db postgresql] [--seconds 10]

The second form profiles one call of the `rest` and `turns` scenarios (bench/rest.py:
health, routing_models, validate, balance, list_50, open_20, turn_start,
turn_blocking) under wrk's 16 connections, on the same seeded history, SQLite or a
scratch PostgreSQL database.

Starts the fake upstream (20 ms per token) and a server pinned like in `bench.run`,
drives `--streams` concurrent 200-token answers (open loop), samples the server with
`py-spy record --gil --nonblocking` (only samples that hold the GIL: CPU, not waiting)
and prints the functions with the most samples, by own time and including callees,
with the CPU per relayed chunk measured over the same window. The raw collapsed stacks
are written to bench/results/ next to the summary (git-ignored: load them into
speedscope or a flame graph tool).
`--floor` profiles bench/floor.py under the same load, to set beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import procs, seed
from bench.load import Target, level_figures, prompt, run_level

RESULTS = procs.ROOT / "bench" / "results"
_LINE = re.compile(r" \(([^)]*?):\d+\)")


# Where a sample's time goes: the first frame, from the leaf up, that matches.
SUBSYSTEMS = (
    ("event loop itself (uvloop: epoll, callbacks, task switches)", ("asyncio/runners.py",)),
    (
        "upstream HTTP client (aiohttp; httpx/httpcore/h11/anyio before) + SSE",
        (
            "aiohttp/",
            "models/transport.py",
            "httpx/",
            "httpcore/",
            "h11/",
            "anyio/",
            "providers/sse.py",
            "providers/openai_compat.py",
        ),
    ),
    (
        "database (SQLAlchemy, aiosqlite/asyncpg)",
        ("sqlalchemy/", "aiosqlite/", "asyncpg/", "greenlet", "vedika/store/"),
    ),
    (
        "WebSocket frames and sends (uvicorn, websockets, starlette)",
        ("protocols/websockets/", "websockets/", "starlette/websockets.py"),
    ),
    ("event building and JSON encoding", ("chat/events.py", "vedika/protocol.py", "msgspec")),
    ("hub and chunk writer", ("scale/hub.py", "chat/chunks.py", "chat/streams.py")),
    ("validation (pydantic)", ("pydantic",)),
    ("logging", ("structlog", "logging/")),
    (
        "ASGI/HTTP stack (uvicorn http, starlette, fastapi, middleware)",
        (
            "protocols/http/",
            "starlette/",
            "fastapi/",
            "uvicorn/middleware",
            "vedika/api/middleware.py",
        ),
    ),
    ("vedika: generation, turns, socket routes", ("vedika/",)),
)


def aggregate(raw: Path, top: int = 25) -> str:
    """Own and inclusive sample shares per function from py-spy's collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    by_sub: collections.Counter[str] = collections.Counter()
    total = 0
    for line in _stacks(raw):
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = [_LINE.sub(r" (\1)", f) for f in stack.split(";")]
        own[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
        by_sub[_subsystem(frames)] += n
    if not total:
        return "no samples"
    skip = ("runpy", "vedika/cli.py", "uvicorn/main.py", "uvicorn/server.py", "_compat.py")
    out = [f"{total} samples holding the GIL", "", "by subsystem (leaf-most match):"]
    out += [f"  {n / total * 100:5.1f}%  {name}" for name, n in by_sub.most_common()]
    out += ["", "own time:"]
    out += [f"  {n / total * 100:5.1f}%  {f}" for f, n in own.most_common(top)]
    out += ["", "including callees:"]
    rows = [(f, n) for f, n in incl.most_common() if not any(s in f for s in skip)]
    out += [f"  {n / total * 100:5.1f}%  {f}" for f, n in rows[: top * 2]]
    return "\n".join(out)


def _stacks(raw: Path) -> list[str]:
    """The collapsed stacks, one per line with its count. A frame's name can hold a
    newline (a SQL text SQLAlchemy put in one): such a stack goes on to the next line."""
    out: list[str] = []
    held = ""
    for line in raw.read_text().splitlines():
        line = held + line
        if line.rpartition(" ")[2].isdigit():
            out.append(line)
            held = ""
        else:
            held = line + " "
    return out


def _subsystem(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, needles in SUBSYSTEMS:
            if any(x in frame for x in needles):
                return name
    return "event loop and other"


async def main(
    streams: int, seconds: float, settings: dict[str, str], rate: int, words: int, floor: bool
) -> None:
    server_cpus, gen_cpus, _ = procs.cores()
    procs.pin_self(gen_cpus)
    tmp = Path(tempfile.mkdtemp(prefix="vedika-profile-"))
    up = procs.fake_upstream(20.0, gen_cpus, tmp / "upstream.log").start_ready()
    srv: procs.Proc
    if floor:  # the same load on bench/floor.py: what the least a relay can do costs
        srv = procs.floor(up.url, server_cpus, tmp / "floor.log")
        settings = {}
    else:
        srv = procs.Vedika(up.url, f"sqlite+aiosqlite:///{tmp}/v.db", tmp, server_cpus, **settings)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    raw = RESULTS / f"profile-{stamp}.txt"
    RESULTS.mkdir(parents=True, exist_ok=True)
    try:
        if isinstance(srv, procs.Vedika):
            srv.start()
            target = Target(
                "vedika", srv.url, sessions=await seed.sessions(srv.db_url, streams * 2)
            )
        else:
            srv.start_ready()
            target = Target("floor", srv.url)
        p = prompt(words)
        duration = p.n_tokens * 0.02
        spy_cmd = _spy(srv.pid, seconds, rate, raw, gen_cpus)
        spy: subprocess.Popen[bytes] | None = None

        def edge(name: str) -> None:
            nonlocal spy
            readings[name] = (time.perf_counter(), procs.cpu_seconds(srv.pid))
            if name == "start":
                spy = subprocess.Popen(spy_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        readings: dict[str, tuple[float, float]] = {}
        lvl = await run_level(
            target,
            streams,
            duration,
            lambda k: p,
            warm_s=duration,
            measure_s=seconds + 1,
            on_window=edge,
        )
        if spy is not None:
            _, err = spy.communicate(timeout=60)
            if spy.returncode:
                print(err.decode()[-2000:])
        fig = level_figures(lvl)
        (t0, c0), (t1, c1) = readings["start"], readings["end"]
        cpu_us = (c1 - c0) / max(fig["chunks_in_window"], 1) * 1e6
        head = (
            f"{'floor relay, ' if floor else ''}{streams} streams, {p.n_tokens}-token answers "
            f"at 20 ms, settings {settings}: "
            f"{fig['chunks_in_window'] / max(p.n_tokens, 1) / (t1 - t0):.1f} turns/s, "
            f"server core busy {(c1 - c0) / (t1 - t0):.2f}, {cpu_us:.1f} us CPU per chunk "
            f"(with py-spy attached), failed {fig['streams_failed']}/{fig['streams']}"
        )
        _report(head, raw, RESULTS / f"profile-{stamp}-summary.txt")
    finally:
        srv.stop()
        up.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _report(head: str, raw: Path, path: Path) -> None:
    summary = head + "\n\n" + aggregate(raw)
    path.write_text(summary + "\n")
    print(summary)
    print(f"\nraw stacks: {raw}")


# `--native`: py-spy also samples C and Cython frames (asyncpg's protocol, uvloop,
# sqlite3), which otherwise count as their Python caller's own time.
_EXTRA_SPY_ARGS: list[str] = []


def _spy(pid: int, seconds: float, rate: int, raw: Path, cpus: list[str]) -> list[str]:
    return [
        *(["taskset", "-c", ",".join(cpus)] if cpus else []),
        shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"),
        "record",
        "--pid",
        str(pid),
        "--rate",
        str(rate),
        "--format",
        "raw",
        "--gil",
        *([] if "--native" in _EXTRA_SPY_ARGS else ["--nonblocking"]),
        "--duration",
        str(int(seconds)),
        "--output",
        str(raw),
        *_EXTRA_SPY_ARGS,
    ]


async def profile_call(name: str, db: str, seconds: float, rate: int) -> None:
    """One REST call or turn of bench/rest.py under wrk, with py-spy attached."""
    from bench import rest

    server_cpus, gen_cpus, _ = procs.cores()
    procs.pin_self(gen_cpus)
    tmp = Path(tempfile.mkdtemp(prefix="vedika-profile-"))
    up = procs.fake_upstream(20.0, gen_cpus, tmp / "upstream.log").start_ready()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    raw = RESULTS / f"profile-{name}-{db}-{stamp}.txt"
    RESULTS.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        url = (
            stack.enter_context(procs.scratch_postgres(f"vedika_profile_{name}"))
            if db == "postgresql"
            else f"sqlite+aiosqlite:///{tmp}/v.db"
        )
        srv = procs.Vedika(
            up.url, url, tmp, server_cpus, VEDIKA_FLUSH_SECONDS="5", VEDIKA_COALESCE_MS="0"
        )
        try:
            srv.start()
            sid, device = (await seed.sessions(srv.db_url, 1))[0]
            seeded = await seed.history(srv.db_url, device, 60, 20)
            call = next(
                c for c in rest.calls(sid, device, seeded["long_conversation_id"]) if c.name == name
            )
            headers = {"Authorization": f"Bearer {sid}"}
            await rest.measure(srv.pid, srv.url, call, headers, 1, gen_cpus)  # warm
            spy = subprocess.Popen(  # noqa: ASYNC220 (starts at once; it is waited on in a thread)
                _spy(srv.pid, seconds, rate, raw, gen_cpus),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            fig = await rest.measure(srv.pid, srv.url, call, headers, seconds, gen_cpus)
            _, err = await asyncio.to_thread(spy.communicate, timeout=60)
            if spy.returncode:
                print(err.decode()[-2000:])
            head = (
                f"{name} on {db}, wrk {rest.CONNECTIONS} connections, {seconds:g} s: "
                f"{fig['ok']} answered ({fig['non_2xx']} non-2xx), {fig['cpu_us']:.0f} us CPU "
                "per request (with py-spy attached)"
            )
            _report(head, raw, RESULTS / f"profile-{name}-{db}-{stamp}-summary.txt")
        finally:
            srv.stop()
            up.stop()
            shutil.rmtree(tmp, ignore_errors=True)


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--coalesce-ms", default="0")
    parser.add_argument(
        "--words", type=int, default=175, help="question words (175: 200-token answers)"
    )
    parser.add_argument("--redis", help="VEDIKA_REDIS_URL: profile the Redis hub")
    parser.add_argument("--call", help="profile one call of bench/rest.py under wrk instead")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--floor", action="store_true", help="profile bench/floor.py instead")
    parser.add_argument("--native", action="store_true", help="sample C/Cython frames too")
    args = parser.parse_args()
    if args.native:
        # py-spy cannot read native stacks without pausing the process: the figures
        # per request then include the pauses.
        _EXTRA_SPY_ARGS.append("--native")
    settings = {"VEDIKA_COALESCE_MS": args.coalesce_ms}
    if args.redis:
        settings["VEDIKA_REDIS_URL"] = args.redis
    loop_factory = None
    with contextlib.suppress(ImportError):
        import uvloop

        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        if args.call:
            runner.run(profile_call(args.call, args.db, args.seconds, args.rate))
        else:
            runner.run(
                main(args.streams, args.seconds, settings, args.rate, args.words, args.floor)
            )


if __name__ == "__main__":
    cli()
