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
    "burst",
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
    # The burst reached the floor and Vedika, every answer whole, and is in the report.
    burst = results["burst"]
    for kind in ("floor", "vedika"):
        assert burst[kind]["streams"] == burst["streams"] * burst["rounds"], burst[kind]
        assert burst[kind]["failed"] == 0 and burst[kind]["ttft_ms"]["p99"], burst[kind]
    assert burst["ttft_p99_ratio_to_floor"], burst
    md = _rendered(results)
    assert f"| TTFT p99, a burst of {burst['streams']} new turns (open loop) |" in md
    assert "## Burst of new turns" in md


# The last full run kept in the repository: the report must render its rows.
FULL_RUN = ROOT / "bench" / "results" / "full-20261206-225243.json"


def _rendered(results: dict[str, object]) -> str:
    from bench import report

    return report.markdown(results)


def test_report_shows_rest_and_turns() -> None:
    results = json.loads(FULL_RUN.read_text())
    md = _rendered(results)
    top = md.split("## Harness check")[0]
    for db in ("SQLite", "PostgreSQL"):
        assert f"| CPU per request, `GET /health` ({db}) | <= 3x bare | " in top
        assert f"| CPU per request, open a 20-message conversation ({db}) | <= 25x bare" in top
        assert f"| CPU per request, a new turn, `POST /ai/chat/start` ({db}) |" in top
    # Measured as "N.Nx (NNN us)" against the bare app of the same scenario.
    assert "| 2.9x (62 us) | bare app 22 us, same run | met |" in top
    assert "## REST calls and turns (issue 15)" in md
    assert md.count("| bare ASGI app |") == 4  # rest and turns, SQLite and PostgreSQL


def test_report_shows_relaying_targets_of_issue_15() -> None:
    results = json.loads(FULL_RUN.read_text())
    top = _rendered(results).split("## Harness check")[0]
    for c in (100, 200):
        assert f"| CPU per relayed token at {c} streams, unbatched | <= 1.3x floor |" in top
    assert "| capacity by the service level, REST criterion included, unbatched |" in top
    # That run's coalescing series set only VEDIKA_COALESCE_MS=20: the defaults.
    gap = next(line for line in top.splitlines() if "gap p99 at 100 streams" in line)
    assert "series Vedika, coalescing" in gap and "(+1.03 ms)" in gap, gap
    # A series that changes a merging setting is not the default one.
    results["sweep"]["vedika_coalesce"]["settings"]["VEDIKA_COALESCE_LAG_MS"] = "0"
    top = _rendered(results).split("## Harness check")[0]
    gap = next(line for line in top.splitlines() if "gap p99 at 100 streams" in line)
    assert gap.endswith("| n/a |"), gap


def test_report_shows_the_burst() -> None:
    results = json.loads(FULL_RUN.read_text())  # older than the scenario: no row
    assert "new turns (open loop)" not in _rendered(results)
    figures = {
        "streams": 1,
        "failed": 0,
        "errors": [],
        "ttft_ms": {"p50": 1.0, "p99": 1.0},
        "ttft_from_send_ms": {"p50": 1.0, "p99": 1.0},
        "max_gap_ms": 21.0,
        "sched_lag_ms": {"p99": 0.5},
        "server_cpu_s_per_burst": 0.1,
    }
    floor = {**figures, "ttft_ms": {"p50": 25.0, "p99": 30.0}}
    vedika = {**figures, "ttft_ms": {"p50": 40.0, "p99": 75.0}, "failed": 1}
    results["burst"] = {
        "streams": 300,
        "window_s": 2.0,
        "rounds": 2,
        "answer_tokens": 200,
        "new_turns_per_s": 150.0,
        "floor": floor,
        "vedika": vedika,
        "ttft_p99_ratio_to_floor": 2.5,
    }
    md = _rendered(results)
    row = next(line for line in md.splitlines() if "a burst of 300 new turns" in line)
    assert "| <= 2x floor | 2.50x (75.0 ms); failed 1/1 |" in row, row
    assert row.endswith("| **not met** |"), row
    assert "| Vedika | 1 | 1 | 40.0 / 75.0 |" in md
