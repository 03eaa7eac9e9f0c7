"""The benchmark harness runs end to end (reduced) and writes every scenario.

No timing is asserted here: speed is judged by `make bench` on a quiet machine
(QUALITY.md). This only proves the harness works: processes start, streams flow
through the fake upstream, the floor and `vedika serve`, and the JSON is complete.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCENARIOS = (
    "machine",
    "harness_check",
    "one_stream",
    "sweep",
    "cpu_per_chunk",
    "persistence",
    "memory",
    "wire_bytes",
    "history",
    "redis",
    "upstream_clients",
    "rest",
    "turns",
)


@pytest.mark.slow
def test_bench_quick_writes_every_scenario(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--no-report", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    results = json.loads(out.read_text())
    missing = [k for k in SCENARIOS if k not in results]
    assert not missing, missing
    failed = {k: v["error"] for k, v in results.items() if isinstance(v, dict) and "error" in v}
    assert not failed, failed
    # Streams went through all three paths and came back whole.
    one = results["one_stream"]["pace_20ms"]["targets"]
    for kind in ("direct", "floor", "vedika"):
        assert one[kind]["streams"] > 0 and one[kind]["failed"] == 0, (kind, one[kind])
    assert results["sweep"]["vedika"]["levels"], results["sweep"]["vedika"]
    assert results["wire_bytes"]["vedika"]["ok"], results["wire_bytes"]["vedika"]
    # Every REST call and both kinds of turn were answered, and only with 2xx.
    for scenario, calls in (("rest", 6), ("turns", 2)):
        figures = {k: v for k, v in results[scenario]["sqlite"].items() if isinstance(v, dict)}
        assert figures["bare"]["ok"] > 0
        measured = {k: v for k, v in figures.items() if k != "bare"}
        assert len(measured) == calls, measured
        for name, fig in measured.items():
            assert fig["ok"] > 0 and fig["non_2xx"] == 0 and fig["cpu_us"], (name, fig)
