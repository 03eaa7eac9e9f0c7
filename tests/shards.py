"""Run one pytest selection as N processes side by side, for `make test-fast`, or the
whole suite as two, for `make test`.

Each process takes every N-th selected test (`--shard K/N`, tests/conftest.py) and
starts its own fakes and servers; most of a system test's time is spent waiting on
them, so two processes on two cores take about half the time of one. Shard 1 reports
to the terminal as it runs, the others when they end; the exit status is the first
failing shard's (0 when all passed).

    .venv/bin/python -m tests.shards 2 -q -m "not slow" tests/test_ws_protocol.py

`--split PATHS N` runs the paths given (comma-separated) in one process and every other
test as N shards beside it. `make test` splits off the browser tests: they share
Chromium and the original client's build, which every-N-th sharding would run twice
at once.

    .venv/bin/python -m tests.shards --split tests/browser,tests/compat 2 -q
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

NO_TESTS = 5  # pytest's exit status when a shard was given nothing to run


def main(argv: list[str]) -> int:
    pytest = [sys.executable, "-m", "pytest"]
    if len(argv) >= 3 and argv[0] == "--split" and argv[2].isdigit() and int(argv[2]) >= 1:
        paths, n, args = [p for p in argv[1].split(",") if p], int(argv[2]), argv[3:]
        ignored = [f"--ignore={p}" for p in paths]
        # The rest, as `n` shards, reports as it runs (it is the longer); the paths split
        # off run in one more process, reported at the end.
        rest = [[*pytest, *args, *ignored, "--shard", f"{k}/{n}"] for k in range(1, n + 1)]
        return run([*rest, [*pytest, *args, *paths]])
    if not argv or not argv[0].isdigit() or int(argv[0]) < 1:
        print(
            "usage: python -m tests.shards N [pytest arguments]\n"
            "       python -m tests.shards --split PATH[,PATH...] N [pytest arguments]",
            file=sys.stderr,
        )
        return 2
    n, args = int(argv[0]), argv[1:]
    return run([[*pytest, *args, "--shard", f"{k}/{n}"] for k in range(1, n + 1)])


def run(commands: list[list[str]]) -> int:
    """The commands side by side; the first reports live, the others when they end."""
    n = len(commands)
    with tempfile.TemporaryDirectory() as tmp:
        logs = [Path(tmp) / f"shard-{k}.log" for k in range(1, n + 1)]
        procs: list[subprocess.Popen[bytes]] = []
        try:
            for k, (log, command) in enumerate(zip(logs, commands, strict=True), 1):
                out = None if k == 1 else log.open("wb")
                procs.append(subprocess.Popen(command, stdout=out, stderr=out))
            codes = [proc.wait() for proc in procs]
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.terminate()
                    proc.wait()
        for k, log in enumerate(logs[1:], 2):
            print(f"\n---------- shard {k}/{n} ----------", flush=True)
            sys.stdout.write(log.read_text(errors="replace"))
    print(f"\nshards: {', '.join(f'{k}/{n} exit {c}' for k, c in enumerate(codes, 1))}")
    if all(c == NO_TESTS for c in codes):
        return NO_TESTS
    return next((c for c in codes if c not in (0, NO_TESTS)), 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
