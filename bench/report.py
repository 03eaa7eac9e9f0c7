"""The Markdown table and the PNG plots from one run's JSON.

.venv/bin/python -m bench.report bench/results/full-latest.json [--dir docs/benchmarks]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import orjson

SERVERS = (("floor", "floor"), ("vedika", "Vedika"), ("vedika_coalesce", "Vedika, coalescing"))


def _f(x: Any, nd: int = 1, unit: str = "") -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}{unit}"
    return f"{x:,.{nd}f}{unit}"


def _pct(fraction: float | None) -> str:
    return _f(None if fraction is None else fraction * 100, 0)


def _get(d: Any, *path: Any) -> Any:
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def _status(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "**not met**")


def _level_at(sweep: dict[str, Any], fraction: float) -> dict[str, Any] | None:
    """The highest level at or below `fraction` of capacity (else the lowest level)."""
    levels = sweep.get("levels") or []
    if not levels:
        return None
    cap = sweep.get("capacity_streams") or sweep.get("capacity_streams_ignoring_rest") or 0
    below = [f for f in levels if f["concurrency"] <= fraction * cap]
    return below[-1] if below else levels[0]


# bench/rest.py's calls (the keys of the `rest` and `turns` results), as the report names them.
REST_LABELS = {
    "health": "`GET /health`",
    "routing_models": "`GET /routing/models`",
    "validate": "`GET /auth/device-session/validate`",
    "balance": "`GET /coins/balance`",
    "list_50": "`GET /ai/conversations?limit=50`",
    "open_20": "open a 20-message conversation",
    "turn_start": "a new turn, `POST /ai/chat/start`",
    "turn_blocking": "a new turn, blocking `POST /ai/chat`",
}
DATABASES = (("sqlite", "SQLite"), ("postgresql", "PostgreSQL"))


def _calls(res: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The measured calls of one database's `rest` or `turns` result, bare app excluded."""
    return [(k, v) for k, v in res.items() if isinstance(v, dict) and k != "bare"]


COALESCING = {
    "VEDIKA_COALESCE_MS": "coalesce_ms",
    "VEDIKA_COALESCE_MIN_STREAMS": "coalesce_min_streams",
    "VEDIKA_COALESCE_LAG_MS": "coalesce_lag_ms",
}


def coalescing_defaults() -> dict[str, str]:
    """The server's defaults for merging chunks (vedika.settings), by variable name."""
    try:
        from vedika.settings import Settings
    except ImportError:
        return {}
    fields = Settings.model_fields
    return {env: f"{fields[name].default:g}" for env, name in COALESCING.items() if name in fields}


def _default_series(sweep: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The sweep series whose server merged chunks with its default settings, if any.

    A series records the settings it set (`settings`) and, since this report knows it,
    the defaults of its run (`defaults`; else today's vedika.settings)."""
    for key, label in SERVERS[1:]:
        sw = sweep.get(key) or {}
        if "levels" not in sw:
            continue
        defaults = sw.get("defaults") or coalescing_defaults()
        if not defaults:
            return None
        given = sw.get("settings") or {}
        if all(float(given.get(env, d)) == float(d) for env, d in defaults.items()):
            return label, sw
    return None


def _at(sw: dict[str, Any], c: int) -> dict[str, Any] | None:
    return next((f for f in sw.get("levels") or [] if f["concurrency"] == c), None)


def _sweep_rows(r: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """Issue 15's relaying targets, from the sweep: per token, capacity, coalescing."""
    sweep = r.get("sweep") or {}
    fl, vs = sweep.get("floor") or {}, sweep.get("vedika") or {}
    if "levels" not in fl or "levels" not in vs:
        return []
    rows = []
    default = _default_series(sweep)
    relay = r.get("relay") or {}
    for c in (100, 200):
        v, f = _at(vs, c), _at(fl, c)
        vt, ft = _get(v, "cpu_us_per_token"), _get(f, "cpu_us_per_chunk")
        context = f"floor {_f(ft, 1, ' us')}, same run"
        rounds = _at(relay, c)
        if rounds is not None and rounds.get("ratio_to_floor") is not None:
            # The relay scenario's alternated rounds, where it ran: less noisy.
            v = rounds
            vt, ft = rounds["vedika_cpu_us_per_token"], rounds["floor_cpu_us_per_chunk"]
            context = (
                f"floor {_f(ft, 1, ' us')}; medians of {relay.get('rounds')} rounds each, "
                "floor and Vedika alternated (sweep: "
                f"{_f(_get(_at(vs, c), 'cpu_us_per_token'), 1, ' us')} against "
                f"{_f(_get(_at(fl, c), 'cpu_us_per_chunk'), 1, ' us')})"
            )
        ratio = None if vt is None or not ft else vt / ft
        if default:
            d = _at(default[1], c)
            dt = _get(d, "cpu_us_per_token")
            context += f"; default settings ({default[0]}) {_f(dt, 1, ' us')}"
            if dt is not None and ft:
                context += f", {dt / ft:.2f}x"
        rows.append(
            (
                f"CPU per relayed token at {c} streams, unbatched",
                "<= 1.3x floor",
                f"{_f(ratio, 2)}x ({_f(vt, 1, ' us')})" if v else f"{c} streams not swept",
                context,
                _status(None if ratio is None else ratio <= 1.3),
            )
        )
    vcap, fcap = vs.get("capacity_streams"), fl.get("capacity_streams")
    share = None if vcap is None or not fcap else vcap / fcap
    top = max(f["concurrency"] for f in fl["levels"])
    context = f"floor {_f(fcap)}" + (
        " (its highest level swept: at least that)" if fcap == top else ""
    )
    context += " on the hard criteria (it has no REST API)"
    if default:
        dcap = default[1].get("capacity_streams")
        context += f"; default settings ({default[0]}) {_f(dcap)}"
    rows.append(
        (
            "capacity by the service level, REST criterion included, unbatched",
            ">= 80% of the floor's",
            f"{_f(vcap)} streams ({_pct(share)}%)",
            context,
            _status(None if share is None else share >= 0.8),
        )
    )
    f100 = _at(fl, 100)
    if default is None:
        rows.append(
            (
                "inter-chunk gap p99 at 100 streams, default settings",
                "<= floor + 2 ms",
                "no series of this run had the default coalescing settings",
                "-",
                "n/a",
            )
        )
    else:
        label, sw = default
        d100 = _at(sw, 100)
        gap, fgap = _get(d100, "gap_ms", "p99"), _get(f100, "gap_ms", "p99")
        added = None if gap is None or fgap is None else gap - fgap
        ugap = _get(_at(vs, 100), "gap_ms", "p99")
        defaults = sw.get("defaults") or coalescing_defaults()
        merging = ", ".join(f"{k.removeprefix('VEDIKA_')} {v}" for k, v in defaults.items())
        rows.append(
            (
                "inter-chunk gap p99 at 100 streams, default settings",
                "<= floor + 2 ms",
                f"{_f(gap, 2, ' ms')} ({'+' if (added or 0) >= 0 else ''}{_f(added, 2, ' ms')})",
                f"series {label} (merging as by default: {merging}); floor "
                f"{_f(fgap, 2, ' ms')}; unbatched {_f(ugap, 2, ' ms')}",
                _status(None if added is None else added <= 2),
            )
        )
    return rows


def _burst_row(r: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    b = r.get("burst")
    if not isinstance(b, dict):
        return []
    n = b.get("streams")
    metric = f"TTFT p99, a burst of {'' if n is None else f'{n:,} '}new turns (open loop)"
    if "floor" not in b or "vedika" not in b:
        return [(metric, "<= 2x floor", str(b.get("error", "-")), "-", "n/a")]
    ratio = b.get("ttft_p99_ratio_to_floor")
    v, fl = b["vedika"], b["floor"]
    return [
        (
            metric,
            "<= 2x floor",
            f"{_f(ratio, 2)}x ({_f(_get(v, 'ttft_ms', 'p99'), 1, ' ms')}); "
            f"failed {v['failed']}/{v['streams']}",
            f"floor {_f(_get(fl, 'ttft_ms', 'p99'), 1, ' ms')} (failed {fl['failed']}), "
            f"same run; all requested within {_f(b.get('window_s'), 1)} s, from the "
            "scheduled arrival",
            _status(None if ratio is None else ratio <= 2 and v["failed"] == 0),
        )
    ]


def _burst(r: dict[str, Any]) -> list[str]:
    b = r.get("burst")
    if not isinstance(b, dict):
        return []
    out = ["## Burst of new turns", ""]
    if "floor" not in b or "vedika" not in b:
        return [*out, str(b.get("error", "-")), ""]
    out += [
        f"{_f(b['streams'])} answers of {b['answer_tokens']} tokens requested on a fixed "
        f"schedule within {_f(b['window_s'], 1)} s ({_f(b['new_turns_per_s'], 0)} new turns "
        f"per second), whatever the server does; {b['rounds']} burst(s) per server, "
        "alternated. TTFT from the scheduled arrival (socket opened, question sent, first "
        "content frame) and from the send.",
        "",
        "| server | turns | failed | TTFT p50 / p99 ms | from send p50 / p99 ms | max gap ms "
        "| scheduler lag p99 ms | server CPU per burst |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, label in SERVERS[:2]:
        f = b[key]
        out.append(
            f"| {label} | {f['streams']} | {f['failed']} "
            f"| {_f(f['ttft_ms']['p50'])} / {_f(f['ttft_ms']['p99'])} "
            f"| {_f(f['ttft_from_send_ms']['p50'])} / {_f(f['ttft_from_send_ms']['p99'])} "
            f"| {_f(f.get('max_gap_ms'), 0)} | {_f(f['sched_lag_ms']['p99'])} "
            f"| {_f(f.get('server_cpu_s_per_burst'), 2, ' s')} |"
        )
    if b["vedika"].get("errors"):
        out += ["", "Vedika's errors: " + ", ".join(b["vedika"]["errors"])]
    return [*out, ""]


def _within(fig: dict[str, Any]) -> bool | None:
    """Whether a call's CPU is within its target multiple of the bare app (None: unknown)."""
    x, limit = fig.get("x_bare"), fig.get("target_x_bare")
    return None if x is None or limit is None else x <= limit


def _rest_rows(r: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """Issue 15: CPU per REST call and per new turn as a multiple of the bare app."""
    rows = []
    for scenario in ("rest", "turns"):
        res = r.get(scenario)
        if not isinstance(res, dict):
            continue
        if "skipped" in res or "error" in res:
            what = "REST calls" if scenario == "rest" else "new turns"
            rows.append(
                (
                    f"CPU per request, {what}",
                    "-",
                    str(res.get("skipped") or res.get("error")),
                    "-",
                    "n/a",
                )
            )
            continue
        for db, db_label in DATABASES:
            d = res.get(db)
            if not isinstance(d, dict):
                continue
            bare = _get(d, "bare", "cpu_us")
            for name, fig in _calls(d):
                x, limit = fig.get("x_bare"), fig.get("target_x_bare")
                target = "-" if limit is None else f"<= {limit:g}x bare"
                if scenario == "turns" and limit is not None:
                    target += " (~1 ms of CPU)"
                rows.append(
                    (
                        f"CPU per request, {REST_LABELS.get(name, name)} ({db_label})",
                        target,
                        f"{_f(x, 1)}x ({_f(fig.get('cpu_us'), 0, ' us')})",
                        f"bare app {_f(bare, 0, ' us')}, same run",
                        _status(_within(fig)),
                    )
                )
    return rows


def targets(r: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(metric, target, measured, baseline, status) for each QUALITY.md speed target."""
    rows = []
    one = _get(r, "one_stream", "pace_20ms", "targets") or {}
    v1 = _get(one, "vedika", "added_ttft_ms", "p99")
    rows.append(
        (
            "added TTFT p99, one stream",
            "<= 2 ms over direct",
            _f(v1, 2, " ms"),
            f"floor {_f(_get(one, 'floor', 'added_ttft_ms', 'p99'), 2, ' ms')}; direct p99 "
            f"{_f(_get(one, 'direct', 'ttft_ms', 'p99'), 2, ' ms')}",
            _status(None if v1 is None else v1 <= 2),
        )
    )
    sweep = r.get("sweep") or {}
    vs = sweep.get("vedika") or {}
    half = _level_at(vs, 0.5)
    if half:
        added = half.get("added_ttft_p99_vs_floor_ms")
        rows.append(
            (
                "added TTFT p99, half capacity",
                "<= 5 ms",
                f"{_f(added, 1, ' ms')} at {half['concurrency']} streams",
                f"floor TTFT p99 at that level {_f(half['ttft_ms']['p99'] - (added or 0), 1)} ms",
                _status(None if added is None else added <= 5),
            )
        )
    eighty = _level_at(vs, 0.8)
    if eighty:
        added = eighty.get("added_gap_p99_vs_floor_ms")
        rows.append(
            (
                "added inter-chunk gap p99, 80% capacity",
                "<= 1 ms",
                f"{_f(added, 2, ' ms')} at {eighty['concurrency']} streams",
                "vs floor at the same level",
                _status(None if added is None else added <= 1),
            )
        )
    cap = vs.get("capacity_streams")
    cap_hard = vs.get("capacity_streams_ignoring_rest")
    ceiling = _get(r, "harness_check", "ceiling_streams")
    rows.append(
        (
            "streams per core at 50 tok/s, unbatched",
            ">= 300",
            f"{_f(cap)} (ignoring the REST criterion: {_f(cap_hard)})",
            f"floor {_f(_get(sweep, 'floor', 'capacity_streams'))}; harness ceiling {_f(ceiling)}",
            _status(None if cap is None else cap >= 300),
        )
    )
    vc = sweep.get("vedika_coalesce") or {}
    capc = vc.get("capacity_streams")
    rows.append(
        (
            "streams per core, coalescing on",
            ">= 1,000",
            f"{_f(capc)} (ignoring REST: {_f(vc.get('capacity_streams_ignoring_rest'))})"
            if "levels" in vc
            else vc.get("skipped", "-"),
            f"harness ceiling {_f(ceiling)}",
            _status(None if capc is None else capc >= 1000),
        )
    )
    head = _get(r, "cpu_per_chunk", "headline") or {}
    cpu = head.get("cpu_us_per_token")
    fl = head.get("floor_cpu_us_per_chunk")
    rows.append(
        (
            "CPU per relayed token",
            "<= 50 us and <= 2x floor",
            f"{_f(cpu, 1, ' us')} at {head.get('concurrency', '-')} streams"
            f" ({_f(head.get('ratio_to_floor'), 2)}x floor)",
            f"floor {_f(fl, 1, ' us')}",
            _status(None if cpu is None else cpu <= 50 and (fl is None or cpu <= 2 * fl)),
        )
    )
    pers = r.get("persistence") or {}
    sq = next(
        (
            c
            for c in pers.get("configs", [])
            if c["database"] == "sqlite" and c["flush_seconds"] != 3600
        ),
        None,
    )
    if sq:
        ratio = pers.get("sqlite_capacity_ratio_flush_vs_no_flush")
        pg_ratio = pers.get("postgresql_capacity_ratio_flush_vs_no_flush")
        ok = sq["commits_per_turn"] is not None and (
            sq["commits_per_turn"] <= sq["allowed_commits_per_turn"]
        )
        rows.append(
            (
                "database commits per assistant turn",
                "2 + <= 1 per flush interval; capacity >= 95% of no flush",
                f"{_f(sq['commits_per_turn'], 2)} "
                f"(allowed {_f(sq['allowed_commits_per_turn'], 2)}); capacity ratio "
                f"SQLite {_f(ratio, 2)}, PostgreSQL {_f(pg_ratio, 2)}",
                f"flush every {_f(sq['flush_seconds'], 1)} s vs never "
                "(accept and finish always commit)",
                _status(ok and (ratio is None or ratio >= 0.95)),
            )
        )
    mem = r.get("memory") or {}
    idle = _get(mem, "idle_sockets", "kib_per_socket")
    act = _get(mem, "active_streams", "kib_per_active_stream")
    rows.append(
        (
            "memory per idle WebSocket / per active stream",
            "<= 20 KiB / <= 64 KiB",
            f"{_f(idle, 1, ' KiB')} ({_f(_get(mem, 'idle_sockets', 'opened'))} open) / "
            f"{_f(act, 1, ' KiB')}",
            "retained per finished answer "
            + _f(_get(mem, "active_streams", "kib_retained_per_finished_answer"), 1, " KiB"),
            _status(None if idle is None or act is None else idle <= 20 and act <= 64),
        )
    )
    wb = r.get("wire_bytes") or {}
    ratio = _get(wb, "vedika", "ratio_to_text")
    rows.append(
        (
            "bytes on the wire per answer",
            "<= 1.3x the text",
            f"{_f(ratio, 2)}x ({_f(_get(wb, 'vedika_deflate', 'ratio_to_text'), 2)}x with "
            "permessage-deflate)",
            f"floor {_f(_get(wb, 'floor', 'ratio_to_text'), 2)}x",
            _status(None if ratio is None else ratio <= 1.3),
        )
    )
    rd = r.get("redis") or {}
    if "skipped" in rd or "error" in rd:
        rows.append(
            (
                "second instance over Redis",
                "<= 1 ms p99 per chunk, <= 10% CPU",
                rd.get("skipped") or rd.get("error", "-"),
                "-",
                "n/a",
            )
        )
    else:
        added = _get(rd, "second_instance", "added_ms_per_chunk_b_minus_a", "p99")
        extra = rd.get("extra_cpu_fraction")
        rows.append(
            (
                "second instance over Redis",
                "<= 1 ms p99 per chunk, <= 10% CPU",
                f"{_f(added, 2, ' ms')} p99 per chunk; {_pct(extra)}% CPU",
                f"{rd.get('concurrency')} streams, memory hub vs Redis hub",
                _status(None if added is None or extra is None else added <= 1 and extra <= 0.10),
            )
        )
    hist = r.get("history") or {}
    for db in ("sqlite", "postgresql"):
        h = hist.get(db)
        if not h:
            continue
        lp = _get(h, "list_50", "server_ms", "p95") or _get(h, "list_50", "ms", "p95")
        op = _get(h, "open_long", "server_ms", "p95") or _get(h, "open_long", "ms", "p95")
        rows.append(
            (
                f"history ({db}): list 50 of {hist.get('conversations'):,} / open "
                f"{hist.get('long_conversation_messages')} messages",
                "p95 <= 20 ms server time",
                f"{_f(lp, 1, ' ms')} / {_f(op, 1, ' ms')}",
                _get(h, "list_50", "timing") or "-",
                _status(None if lp is None or op is None else lp <= 20 and op <= 20),
            )
        )
    rows += _sweep_rows(r)
    rows += _burst_row(r)
    rows += _rest_rows(r)
    return rows


def table(r: dict[str, Any]) -> str:
    m = r.get("machine", {})
    load = m.get("loadavg_1m_samples", {})
    out = [
        f"Machine: {m.get('nproc')} cores, {m.get('cpu_model')}; Python {m.get('python')}; "
        f"commit `{str(m.get('commit'))[:12]}`"
        f"{' (plus uncommitted changes)' if m.get('dirty') else ''}; "
        f"{m.get('date')}; {m.get('mode')} run, {m.get('elapsed_s')} s.",
        f"Server on cores {m.get('server_cpus') or 'any'}, generator and upstream on "
        f"{m.get('generator_cpus') or 'any'} (pinned: {_f(m.get('pinned'))}). "
        f"1-min load average during the run: {_f(load.get('min'), 2)}-{_f(load.get('max'), 2)} "
        f"(mean {_f(load.get('mean'), 2)}).",
        "",
        "| metric | target | measured | baseline / context | status |",
        "|---|---|---|---|---|",
    ]
    for row in targets(r):
        out.append("| " + " | ".join(row) + " |")
    return "\n".join(out)


def _one_stream(r: dict[str, Any]) -> list[str]:
    out = [
        "| pace | client of | TTFT p50 | TTFT p99 | gap p50 | gap p99 | added TTFT p50 / p99 "
        "| added gap p50 / p99 | failed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for pace, res in (r.get("one_stream") or {}).items():
        if not isinstance(res, dict) or "targets" not in res:
            continue
        for kind, t in res["targets"].items():
            at = t.get("added_ttft_ms") or {}
            ag = t.get("added_gap_ms") or {}
            out.append(
                f"| {pace.removeprefix('pace_')} | {kind} | {_f(t['ttft_ms']['p50'], 2)} | "
                f"{_f(t['ttft_ms']['p99'], 2)} | {_f(t['gap_ms']['p50'], 2)} | "
                f"{_f(t['gap_ms']['p99'], 2)} | {_f(at.get('p50'), 2)} / {_f(at.get('p99'), 2)} | "
                f"{_f(ag.get('p50'), 2)} / {_f(ag.get('p99'), 2)} | {t['failed']}/{t['streams']} |"
            )
    return out


def _sweep(r: dict[str, Any]) -> list[str]:
    out = [
        "| server | streams | TTFT p50 / p99 ms | gap p50 / p99 ms | max gap ms | CPU us/chunk "
        "| us/token | server core | generator cores | REST p99 ms | failed | SLO |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    sweep = r.get("sweep") or {}
    for key, label in SERVERS:
        sw = sweep.get(key) or {}
        for f in sw.get("levels", []):
            slo = f.get("slo", {})
            failed = [k for k, v in slo.get("checks", {}).items() if not v]
            out.append(
                f"| {label} | {f['concurrency']}{'*' if f.get('beyond_2x_harness_margin') else ''} "
                f"| {_f(f['ttft_ms']['p50'])} / {_f(f['ttft_ms']['p99'])} "
                f"| {_f(f['gap_ms']['p50'])} / {_f(f['gap_ms']['p99'])} | {_f(f['max_gap_ms'], 0)} "
                f"| {_f(f.get('cpu_us_per_chunk'))} | {_f(f.get('cpu_us_per_token'))} "
                f"| {_f(f.get('server_core_busy'), 2)} | {_f(f.get('generator_core_busy'), 2)} "
                f"| {_f(_get(f, 'rest_ms', 'p99'))} | {f['streams_failed']}/{f['streams']} "
                f"| {'ok' if slo.get('ok') else 'broken: ' + ', '.join(failed)} |"
            )
        if sw.get("rest_idle_ms"):
            out.append(
                f"| {label}: REST idle p99 {_f(sw['rest_idle_ms']['p99'], 2)} ms; capacity "
                f"{_f(sw.get('capacity_streams'))} streams "
                f"({_f(sw.get('capacity_streams_ignoring_rest'))} ignoring REST) "
                "| | | | | | | | | | | |"
            )
        elif "levels" in sw:
            out.append(
                f"| {label}: capacity {_f(sw.get('capacity_streams'))} streams "
                "| | | | | | | | | | | |"
            )
    return out


def _persistence(r: dict[str, Any]) -> list[str]:
    p = r.get("persistence") or {}
    out = [
        f"{p.get('concurrency', '-')} concurrent streams.",
        "",
        "| database | flush every | CPU us/chunk | TTFT p99 ms | gap p99 ms | turns | flush "
        "commits | commits/turn | allowed | PG xact_commit/turn |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in p.get("configs", []):
        out.append(
            f"| {c['database']} | {_f(c['flush_seconds'], 1)} s | {_f(c.get('cpu_us_per_chunk'))} "
            f"| {_f(c['ttft_ms']['p99'])} | {_f(c['gap_ms']['p99'])} | {_f(int(c['turns']))} "
            f"| {_f(int(c['flush_commits']))} | {_f(c['commits_per_turn'], 2)} "
            f"| {_f(c['allowed_commits_per_turn'], 2)} "
            f"| {_f(c.get('pg_xact_commit_per_turn'), 2)} |"
        )
    if "postgresql" in p and isinstance(p["postgresql"], str):
        out.append(f"\nPostgreSQL: {p['postgresql']}")
    return out


def rest_table(res: dict[str, Any]) -> list[str]:
    """One database's `rest` or `turns` figures: every call against the bare app."""
    out = [
        "| call | requests (non-2xx) | CPU per request | x bare | target | met | per core per s |",
        "|---|---|---|---|---|---|---|",
    ]
    bare = res.get("bare") or {}
    out.append(
        f"| bare ASGI app | {_f(bare.get('requests'))} ({_f(bare.get('non_2xx'))}) "
        f"| {_f(bare.get('cpu_us'), 0, ' us')} | 1.0 | | | {_f(bare.get('per_core_per_s'), 0)} |"
    )
    for name, fig in _calls(res):
        x, limit = fig.get("x_bare"), fig.get("target_x_bare")
        out.append(
            f"| {REST_LABELS.get(name, name)} | {_f(fig.get('requests'))} "
            f"({_f(fig.get('non_2xx'))}) | {_f(fig.get('cpu_us'), 0, ' us')} | {_f(x, 1)} "
            f"| {'-' if limit is None else f'<= {limit:g}'} "
            f"| {_f(_within(fig))} "
            f"| {_f(fig.get('per_core_per_s'), 0)} |"
        )
    return out


def _rest(r: dict[str, Any]) -> list[str]:
    out = []
    for scenario, title in (("rest", "REST calls"), ("turns", "New turns")):
        res = r.get(scenario)
        if not isinstance(res, dict):
            continue
        out += [f"### {title} (`{scenario}`)", ""]
        if "skipped" in res or "error" in res:
            out += [str(res.get("skipped") or res.get("error")), ""]
            continue
        for db, db_label in DATABASES:
            d = res.get(db)
            if not isinstance(d, dict):
                continue
            out += [
                f"{db_label}: wrk, {d.get('connections')} connections, "
                f"{_f(d.get('seconds_per_call'), 0)} s per call; server CPU per 2xx answer.",
                "",
                *rest_table(d),
                "",
            ]
    return out


def _misc(r: dict[str, Any]) -> list[str]:
    out = []
    mem = r.get("memory") or {}
    if "idle_sockets" in mem:
        i, a = mem["idle_sockets"], mem.get("active_streams", {})
        out += [
            "### Memory (RSS of the server)",
            "",
            f"- {i['opened']:,} idle WebSockets ({i['failed']} failed): "
            f"{_f(i['rss_before_mib'])} -> {_f(i['rss_after_mib'])} MiB, "
            f"**{_f(i['kib_per_socket'])} KiB per socket**.",
        ]
        if a:
            out.append(
                f"- {a['streams']} active streams of {a['answer_tokens']} tokens: "
                f"{_f(a['rss_before_mib'])} -> {_f(a['rss_mid_mib'])} MiB mid-stream, "
                f"**{_f(a['kib_per_active_stream'])} KiB per active stream** (socket included); "
                f"after they finished {_f(a['rss_after_all_finished_mib'])} MiB, i.e. "
                f"{_f(a['kib_retained_per_finished_answer'])} KiB kept per finished answer "
                "(the hub's replay log)."
            )
        out.append("")
    wb = r.get("wire_bytes") or {}
    if "vedika" in wb:
        out += [
            "### Bytes on the wire per answer",
            "",
            f"Answer: {wb['answer_tokens']} tokens, {wb['answer_text_bytes']:,} bytes of text.",
            "",
            "| relay | deflate | frames | wire bytes | x text | payload bytes by event |",
            "|---|---|---|---|---|---|",
        ]
        for key in ("vedika", "vedika_deflate", "floor", "floor_deflate"):
            w = wb.get(key)
            if not w:
                continue
            by = ", ".join(f"{k} {v:,}" for k, v in sorted(w["payload_bytes_by_event"].items()))
            out.append(
                f"| {key.split('_')[0]} | {'yes' if key.endswith('deflate') else 'no'} "
                f"| {w['frames']} | {w['wire_bytes']:,} | {_f(w['ratio_to_text'], 2)} | {by} |"
            )
        cpu = wb.get("server_cpu_us_per_chunk")
        if cpu:
            out += [
                "",
                f"Server CPU per chunk at {cpu['concurrency']} streams: "
                f"{_f(cpu.get('plain'))} us without compression, {_f(cpu.get('deflate'))} us "
                f"with permessage-deflate ({_pct(cpu.get('extra_fraction'))}% "
                "more; browsers always offer it).",
            ]
        out.append("")
    hist = r.get("history") or {}
    if any(db in hist for db in ("sqlite", "postgresql")):
        out += [
            "### History",
            "",
            "| database | call | response bytes | p50 ms | p95 ms | p99 ms | timing |",
            "|---|---|---|---|---|---|---|",
        ]
        for db in ("sqlite", "postgresql"):
            h = hist.get(db)
            if not h:
                continue
            for call in ("list_50", "open_long"):
                c = h[call]
                ms = c.get("server_ms") or c["ms"]
                out.append(
                    f"| {db} | {call} | {c['response_bytes']:,} | {_f(ms['p50'], 2)} "
                    f"| {_f(ms['p95'], 2)} | {_f(ms['p99'], 2)} | {c['timing']} |"
                )
        out.append("")
    uc = r.get("upstream_clients") or {}
    if uc.get("clients"):
        out += [
            "### Reading the upstream, by client (server core, no relaying)",
            "",
            f"{uc['streams']} concurrent 200-token answers; CPU of the reading process only.",
            "",
            "| client | tokens/s | CPU us per token | core busy |",
            "|---|---|---|---|",
        ]
        for c in uc["clients"]:
            out.append(
                f"| {c['client']} | {_f(c.get('tokens_per_s'), 0)} "
                f"| {_f(c.get('cpu_us_per_token'))} | {_f(c.get('core_busy'), 2)} |"
                if "error" not in c
                else f"| {c['client']} | failed: {c['error']} | | |"
            )
        out.append("")
    rd = r.get("redis") or {}
    out += ["### Second instance over Redis", ""]
    if "skipped" in rd or "error" in rd:
        out.append(f"{rd.get('skipped') or rd.get('error')}")
    else:
        si = rd.get("second_instance", {})
        mem_cpu = _f(_get(rd, "memory_hub", "cpu_us_per_chunk"))
        redis_cpu = _f(_get(rd, "redis_hub", "cpu_us_per_chunk"))
        xf = rd.get("extra_cpu_fraction")
        extra = _pct(xf)
        mem_gap = _f(_get(rd, "memory_hub", "gap_ms", "p99"))
        redis_gap = _f(_get(rd, "redis_hub", "gap_ms", "p99"))
        b50 = _f(_get(si, "added_ms_per_chunk_b_minus_a", "p50"), 2)
        b99 = _f(_get(si, "added_ms_per_chunk_b_minus_a", "p99"), 2)
        out.append(
            f"{rd.get('concurrency')} streams: memory hub {mem_cpu} us/chunk, Redis hub "
            f"{redis_cpu} us/chunk ({extra}% extra); gap p99 {mem_gap} vs {redis_gap} ms. "
            f"Followers on the second instance: {b50} ms p50 / {b99} ms p99 later than on "
            f"the generating one ({si.get('failed', '-')} failed pairs)."
        )
        rounds = rd.get("rounds") or {}
        if len(rounds.get("redis_hub", [])) > 1:
            each = [
                f"{_f(m.get('cpu_us_per_chunk'))} / {_f(r.get('cpu_us_per_chunk'))}"
                for m, r in zip(rounds["memory_hub"], rounds["redis_hub"], strict=False)
            ]
            out.append(
                f"The two hubs were measured in turn, {len(each)} rounds (memory / Redis, "
                f"us/chunk): {'; '.join(each)}. The figures above are each hub's median."
            )
    out.append("")
    return out


def _shown(path: Path | None) -> str:
    """A results path relative to the repository, or as given when outside it."""
    if path is None:
        return "-"
    root = Path(__file__).resolve().parents[1]
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def markdown(r: dict[str, Any], json_path: Path | None = None) -> str:
    hc = r.get("harness_check") or {}
    lines = [
        "# Benchmark results",
        "",
        "Generated by `make bench` (`bench/run.py`); how to read it: [README.md](README.md).",
        f"Raw figures: `{_shown(json_path)}`.",
        "",
        table(r),
        "",
        "## Harness check",
        "",
        f"The generator alone against the fake upstream (20 ms per token): ceiling "
        f"{_f(hc.get('ceiling_streams'))} streams; twice the 300-stream target "
        f"{'reached' if hc.get('twice_target_ok') else '**not reached**'}. Levels marked * in "
        "the sweep are above half that ceiling.",
        "",
        "| streams | gap p99 ms | max gap ms | scheduler lag p99 ms | generator cores busy | ok |",
        "|---|---|---|---|---|---|",
    ]
    for f in hc.get("levels", []):
        lines.append(
            f"| {f['concurrency']} | {_f(f['gap_ms']['p99'])} | {_f(f['max_gap_ms'], 0)} "
            f"| {_f(f['sched_lag_ms']['p99'])} | {_f(f.get('generator_core_busy'), 2)} "
            f"| {_f(f.get('ok'))} |"
        )
    lines += ["", "## One stream", "", *_one_stream(r), "", "## Concurrency sweep", ""]
    lines += [
        "Answers of "
        f"{_get(r, 'sweep', 'answer_tokens') or '-'} tokens at 20 ms per token; figures from "
        "the steady window; the SLO is QUALITY.md's (every frame, no gap > 200 ms, errors "
        "< 0.1%, REST p99 within 2x idle).",
        "",
        *_sweep(r),
        "",
        "![latency vs concurrent streams](latency_vs_streams.png)",
        "![CPU per chunk](cpu_per_chunk.png)",
        "",
        *_burst(r),
        "## Persistence",
        "",
        *_persistence(r),
        "",
        "## REST calls and turns (issue 15)",
        "",
        "Server CPU per request against a bare ASGI app on the same uvicorn, measured "
        "just before in the same run (`bench/rest.py`); a turn is the request plus the "
        "2-token answer it starts, finished and stored.",
        "",
        *_rest(r),
        *_misc(r),
    ]
    return "\n".join(lines) + "\n"


def _slo_ok(f: dict[str, Any]) -> bool:
    return bool(f.get("slo", {}).get("ok", True))


def plots(r: dict[str, Any], out_dir: Path) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    sweep = r.get("sweep") or {}
    made = []
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for key, label in SERVERS:
        levels = (sweep.get(key) or {}).get("levels") or []
        if not levels:
            continue
        xs = [f["concurrency"] for f in levels]
        for ax, metric in ((axes[0], "ttft_ms"), (axes[1], "gap_ms")):
            ys = [f[metric]["p99"] for f in levels]
            (line,) = ax.plot(xs, ys, marker="o", label=label)
            broken = [(x, y) for x, y, f in zip(xs, ys, levels, strict=True) if not _slo_ok(f)]
            if broken:  # hollow markers: this level broke the service level
                ax.plot(
                    [x for x, _ in broken],
                    [y for _, y in broken],
                    linestyle="none",
                    marker="o",
                    markersize=11,
                    markerfacecolor="none",
                    markeredgecolor=line.get_color(),
                    color=line.get_color(),
                )
    axes[0].set_title("time to first token, p99 (ringed: service level broken)")
    axes[1].set_title("inter-chunk gap, p99 (pace 20 ms)")
    for ax in axes:
        ax.set_xlabel("concurrent streams (one server core)")
        ax.set_ylabel("ms")
        ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        ax.legend()
    m = r.get("machine", {})
    fig.suptitle(
        f"Vedika vs floor - {m.get('cpu_model')} - {str(m.get('commit'))[:10]}", fontsize=9
    )
    fig.tight_layout()
    path = out_dir / "latency_vs_streams.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    made.append(path)

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for key, label in SERVERS:
        levels = (sweep.get(key) or {}).get("levels") or []
        pts = [(f["concurrency"], f.get("cpu_us_per_token")) for f in levels]
        pts = [(x, y) for x, y in pts if y is not None]
        if pts:
            ax.plot([x for x, _ in pts], [y for _, y in pts], marker="o", label=label)
    ax.axhline(50, color="red", linestyle="--", linewidth=1, label="target 50 us")
    ax.axhspan(24, 31, color="grey", alpha=0.15, label="QUALITY.md lean relay 24-31 us")
    ax.set_xlabel("concurrent streams")
    ax.set_ylabel("server CPU per relayed token (us)")
    ax.set_title("CPU per relayed token")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out_dir / "cpu_per_chunk.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    made.append(path)
    return made


def write(r: dict[str, Any], out_dir: Path, json_path: Path | None = None) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    plots(r, out_dir)
    path = out_dir / "results.md"
    path.write_text(markdown(r, json_path))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("json", type=Path)
    parser.add_argument(
        "--dir", type=Path, default=Path(__file__).parents[1] / "docs" / "benchmarks"
    )
    args = parser.parse_args()
    r = orjson.loads(args.json.read_bytes())
    print(write(r, args.dir, args.json.resolve()))


if __name__ == "__main__":
    main()
