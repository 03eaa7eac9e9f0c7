"""`rest` and `turns`: what one REST call and one new turn cost in server CPU.

wrk (Debian's package) holds 16 keep-alive connections from the load cores for a few
seconds per call; the figure is the server's CPU time (from /proc) over the requests
it answered with a 2xx. A bare ASGI app on the same uvicorn (bench/bare.py), measured
in the same run, is the baseline every ratio is taken against.

A new turn is `POST /ai/chat/start` (accept, charge, store, start) plus the generation
it starts (a 2-token answer from the fake model `fake-short`, finished and stored): the
CPU window closes only once the server has no live generation left. `POST /ai/chat`
(the blocking call) is measured the same way and also gives turns per second per core.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench import procs, seed

CONNECTIONS = 16
SHORT_MODEL = "fake-short"  # tests/fakes/upstream.py: two tokens, at once

# The targets of issue 15, as ratios to the bare app of the same run.
TARGETS = {
    "health": 3.0,
    "routing_models": 8.0,
    "validate": 8.0,
    "balance": 8.0,
    "list_50": 25.0,
    "open_20": 25.0,
    "turn_start": 50.0,
    "turn_blocking": 50.0,
}


@dataclass(frozen=True)
class Call:
    name: str
    method: str
    path: str
    body: dict[str, Any] | None = None
    turns: bool = False  # starts a generation: wait for it to end before reading CPU


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def _script(call: Call, headers: dict[str, str]) -> str:
    lines = [f'wrk.method = "{call.method}"']
    for k, v in headers.items():
        lines.append(f'wrk.headers["{k}"] = "{v}"')
    if call.body is not None:
        body = orjson.dumps(call.body).decode().replace("\\", "\\\\").replace('"', '\\"')
        lines.append('wrk.headers["Content-Type"] = "application/json"')
        lines.append(f'wrk.body = "{body}"')
    # wrk counts non-2xx/3xx responses itself ("Non-2xx or 3xx responses: N").
    return "\n".join(lines) + "\n"


_REQUESTS = re.compile(r"(\d+) requests in")
_NON2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


def _wrk(url: str, script: str, seconds: float, cpus: list[str]) -> dict[str, int]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
        path = f.name
    try:
        cmd = [
            *procs._taskset(cpus),
            "wrk",
            "-t1",
            f"-c{CONNECTIONS}",
            f"-d{max(seconds, 1):g}s",
            "--timeout",
            "10s",
            "-s",
            path,
            url,
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
        out = done.stdout
    finally:
        os.unlink(path)
    requests = _REQUESTS.search(out)
    if requests is None:
        raise RuntimeError(f"wrk said: {out[-300:]} {done.stderr[-300:]}")
    bad = _NON2XX.search(out)
    errs = _ERRORS.search(out)
    return {
        "requests": int(requests.group(1)),
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": sum(int(x) for x in errs.groups()) if errs else 0,
    }


async def _idle(url: str, timeout: float = 60.0) -> None:
    """Until the server has no live generation (its /health says how many)."""
    import httpx

    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(trust_env=False) as client:
        while time.monotonic() < deadline:
            r = await client.get(url + "/health")
            if r.json().get("live_generations", 0) == 0:
                return
            await asyncio.sleep(0.05)


async def measure(
    pid: int, url: str, call: Call, headers: dict[str, str], seconds: float, cpus: list[str]
) -> dict[str, Any]:
    """CPU µs per 2xx response of `call`, the server being process `pid`."""
    script = _script(call, headers)
    # A short warm-up: caches, compiled statements, connection pools.
    await asyncio.to_thread(_wrk, url + call.path, script, 1, cpus)
    if call.turns:
        await _idle(url)
    cpu0, t0 = procs.cpu_seconds(pid), time.perf_counter()
    counts = await asyncio.to_thread(_wrk, url + call.path, script, seconds, cpus)
    if call.turns:
        await _idle(url)
    cpu1, t1 = procs.cpu_seconds(pid), time.perf_counter()
    ok = counts["requests"] - counts["non_2xx"]
    cpu = cpu1 - cpu0
    return {
        **counts,
        "ok": ok,
        "seconds": t1 - t0,
        "server_cpu_s": cpu,
        "cpu_us": cpu / ok * 1e6 if ok else None,
        "per_core_per_s": ok / cpu if cpu > 0 else None,
    }


def calls(sess: str, device: str, long_id: str) -> list[Call]:
    short = {"message": "Say yes.", "model_id": SHORT_MODEL, "device_id": device}
    return [
        Call("health", "GET", "/health"),
        Call("routing_models", "GET", "/routing/models"),
        Call("validate", "GET", "/auth/device-session/validate"),
        Call("balance", "GET", "/coins/balance"),
        Call("list_50", "GET", "/ai/conversations?limit=50"),
        Call("open_20", "GET", f"/ai/conversations/{long_id}"),
        Call("turn_start", "POST", "/ai/chat/start", short, turns=True),
        Call("turn_blocking", "POST", "/ai/chat", short, turns=True),
    ]


REST_CALLS = ("health", "routing_models", "validate", "balance", "list_50", "open_20")
TURN_CALLS = ("turn_start", "turn_blocking")


async def scenario(
    bench: Any, names: tuple[str, ...], seconds: float, postgres: bool = True
) -> dict[str, Any]:
    """`names` on SQLite and (when reachable) PostgreSQL, each beside the bare app."""
    out: dict[str, Any] = {"sqlite": await run(bench, "sqlite", seconds, names)}
    if postgres and bench.pg_ok:
        with procs.scratch_postgres(f"vedika_bench_rest_{os.getpid()}") as url:
            out["postgresql"] = await run(bench, url, seconds, names)
    return out


async def run(bench: Any, db: str, seconds: float, names: tuple[str, ...]) -> dict[str, Any]:
    """The calls `names` on one server (`db`: "sqlite" or a PostgreSQL URL), and the bare
    app just before them."""
    out: dict[str, Any] = {"connections": CONNECTIONS, "seconds_per_call": seconds}
    bare = procs.Proc(
        "bare ASGI app",
        [sys.executable, "-m", "bench.bare"],
        cpus=bench.server_cpus,
        env=procs.python_env(),
        log=bench.tmp / "bare.log",
    )
    bench._own(bare).start_ready()
    try:
        out["bare"] = await measure(
            bare.pid, bare.url, Call("bare", "GET", "/"), {}, seconds, bench.gen_cpus
        )
    finally:
        bench.stop(bare)
    srv, sessions = await bench.vedika(20.0, db=db, sessions=2, VEDIKA_FLUSH_SECONDS="5")
    try:
        sid, device = sessions[0]
        seeded = await seed.history(srv.db_url, device, 60, 20)
        headers = {"Authorization": f"Bearer {sid}"}
        for call in calls(sid, device, seeded["long_conversation_id"]):
            if call.name not in names:
                continue
            fig = await measure(srv.pid, srv.url, call, headers, seconds, bench.gen_cpus)
            base = out["bare"]["cpu_us"]
            fig["x_bare"] = fig["cpu_us"] / base if fig["cpu_us"] and base else None
            fig["target_x_bare"] = TARGETS.get(call.name)
            fig["met"] = bool(fig["x_bare"] is not None and fig["x_bare"] <= TARGETS[call.name])
            out[call.name] = fig
    finally:
        bench.release(srv)
    return out


def table(result: dict[str, Any]) -> str:
    """The Markdown table of one database's figures (the report's)."""
    from bench.report import rest_table

    return "\n".join(rest_table(result))


if __name__ == "__main__":  # a quick look: python -m bench.rest
    print(Path(__file__).read_text().split('"""')[1])
