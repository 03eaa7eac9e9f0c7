"""One level of streams against `vedika serve` with the settings given: the largest
gap, the gaps' and TTFT's p99, and the CPU per relayed chunk, in one line.

    .venv/bin/python -m bench.level 100 VEDIKA_FLUSH_SECONDS=5 VEDIKA_COALESCE_MS=0
    .venv/bin/python -m bench.level 100 --probe   # and the sweep's REST probe's p50/p99

For quick A/B questions about a setting or the environment (run each side in turn,
several times: one run of this host differs from the next by up to a tenth). The
server is pinned like in `bench.run`; answers are 200 tokens at 20 ms a token, on
SQLite. A setting that is not Vedika's (PYTHONPATH=...) goes to the server's
environment too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import tempfile
import time
from pathlib import Path

from bench import procs, seed
from bench.load import Target, level_figures, pct, prompt, run_level
from bench.run import Probe


async def measure(
    streams: int, settings: dict[str, str], seconds: float, probe: bool = False
) -> str:
    server_cpus, gen_cpus, _ = procs.cores()
    procs.pin_self(gen_cpus)
    tmp = Path(tempfile.mkdtemp(prefix="vedika-level-"))
    up = procs.fake_upstream(20.0, gen_cpus, tmp / "upstream.log").start_ready()
    srv = procs.Vedika(up.url, f"sqlite+aiosqlite:///{tmp}/v.db", tmp, server_cpus, **settings)
    try:
        srv.start()
        sessions = await seed.sessions(srv.db_url, streams * 2 + 1)
        p = prompt(175)
        duration = p.n_tokens * 0.02
        readings: dict[str, tuple[float, float]] = {}

        def edge(name: str) -> None:
            readings[name] = (time.perf_counter(), procs.cpu_seconds(srv.pid))

        async with contextlib.AsyncExitStack() as stack:
            rest = None
            if probe:  # the sweep's REST probe (bench.run), on the other cores
                rest = await stack.enter_async_context(Probe(srv.url, sessions[0][0], gen_cpus))
                sessions = sessions[1:]
            lvl = await run_level(
                Target("vedika", srv.url, sessions=sessions),
                streams,
                duration,
                lambda _k: p,
                warm_s=duration,
                measure_s=seconds,
                on_window=edge,
            )
        fig = level_figures(lvl)
        rest_line = ""
        if rest is not None:
            lat = rest.between(*lvl.window)
            rest_line = (
                f"; REST p50 {pct(lat, 50):.2f} ms, p99 {pct(lat, 99):.2f} ms ({len(lat)} calls)"
            )
        (t0, c0), (t1, c1) = readings["start"], readings["end"]
        per_chunk = (c1 - c0) / max(fig["chunks_in_window"], 1) * 1e6
        return (
            f"{streams} streams {settings}: {per_chunk:.1f} us CPU per chunk, core busy "
            f"{(c1 - c0) / (t1 - t0):.2f}; gap p50 {fig['gap_ms']['p50']:.2f} ms, "
            f"p99 {fig['gap_ms']['p99']:.2f} ms, max {fig['max_gap_ms']:.1f} ms; "
            f"TTFT p99 {fig['ttft_ms']['p99']:.1f} ms; failed "
            f"{fig['streams_failed']}/{fig['streams']}{rest_line}"
        )
    finally:
        srv.stop()
        up.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("streams", type=int)
    parser.add_argument("settings", nargs="*", help="NAME=VALUE, for the server's environment")
    parser.add_argument("--seconds", type=float, default=15, help="the measured window")
    parser.add_argument("--probe", action="store_true", help="the REST probe alongside")
    args = parser.parse_args()
    settings = dict(s.split("=", 1) for s in args.settings)
    print(asyncio.run(measure(args.streams, settings, args.seconds, args.probe)), flush=True)


if __name__ == "__main__":
    cli()
