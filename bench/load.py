"""The open-loop load generator: streams on a fixed schedule, every chunk timestamped.

A level of `n` concurrent streams starts one stream every `duration / n` seconds
(the answer's nominal length divided by the level), whatever the server does: a
server that lags gets more streams in flight, not fewer (open loop). Each stream
records its send time, the arrival time of each content frame
(`time.perf_counter_ns()`), the chunk numbers and the text, so the figures come
from every chunk and every stream is checked for lost, reordered or missing text.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import orjson

from bench.wire import SSEClient, WSClient


class Prompt(NamedTuple):
    text: str
    expected: str  # the exact answer the fake upstream gives
    n_tokens: int


def prompt(words: int, tag: str = "") -> Prompt:
    """A question whose fake-steady answer has 4 + words + 2 + 19 tokens."""
    from tests.fakes.upstream import fake_reply

    vocab = [
        "alpha",
        "beta",
        "gamma",
        "delta",
        "epsilon",
        "zeta",
        "eta",
        "theta",
        "iota",
        "kappa",
        "lambda",
        "mu",
    ]
    text = " ".join([tag or "bench", *(vocab[i % len(vocab)] for i in range(max(words - 1, 0)))])
    tokens = fake_reply("fake-steady", text)
    return Prompt(text, "".join(tokens), len(tokens))


@dataclass(slots=True, eq=False)
class Stream:
    target: str
    expected: str = ""  # the exact answer text, when known
    n_tokens: int = 0  # upstream tokens in that answer
    t_sched: int = 0
    t_start: int = 0  # the task began (scheduler lag = t_start - t_sched)
    t_send: int = 0
    t_first: int = 0
    t_end: int = 0
    arrivals: list[int] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    last_id: int = 0
    ids_ok: bool = True
    total_chunks: int | None = None
    error: str | None = None
    wire_bytes: int = 0
    payload: dict[str, int] = field(default_factory=dict)  # bytes per event type
    message_id: str = ""
    started: asyncio.Future[None] | None = None  # resolved once the message id is known
    done: asyncio.Future[None] | None = None

    @property
    def ok(self) -> bool:
        """Every frame arrived, in order, and the text is exactly the answer."""
        if self.error or not self.t_end or not self.ids_ok:
            return False
        if self.total_chunks is not None and self.total_chunks != self.last_id:
            return False
        return not self.expected or "".join(self.texts) == self.expected

    def gaps_ns(self) -> list[int]:
        a = self.arrivals
        return [a[i] - a[i - 1] for i in range(1, len(a))]


def _finish(s: Stream, t: int, error: str | None = None) -> None:
    if error and not s.error:
        s.error = error
    if not s.t_end:
        s.t_end = t
    if s.done is not None and not s.done.done():
        s.done.set_result(None)


def ws_handler(s: Stream, ready: asyncio.Future[None] | None, count_types: bool = False) -> Any:
    """The per-frame callback for Vedika's and the floor's sockets."""
    loads = orjson.loads

    def on_message(payload: bytes, t: int) -> None:
        obj = loads(payload)
        typ = obj.get("type")
        if count_types and typ != "connection_established":
            s.payload[typ] = s.payload.get(typ, 0) + len(payload)
        if typ == "content_chunk":
            cid = obj["chunk_id"]
            if cid != s.last_id + 1:
                s.ids_ok = False
            s.last_id = cid
            if not s.t_first:
                s.t_first = t
            s.arrivals.append(t)
            s.texts.append(obj["content"])
        elif typ == "stream_complete":
            s.total_chunks = obj.get("total_chunks")
            _finish(s, t)
        elif typ == "stream_error":
            _finish(s, t, f"stream_error:{obj.get('code')}")
        elif typ == "connection_established":
            if ready is not None and not ready.done():
                ready.set_result(None)
        elif typ in ("credits_info", "stream_start"):
            s.message_id = obj.get("message_id", "")
            if s.started is not None and not s.started.done():
                s.started.set_result(None)

    return on_message


@dataclass(slots=True)
class Target:
    """Where streams go: `direct` (the upstream), `floor` or `vedika`."""

    kind: str
    url: str  # http://host:port (upstream, vedika) or ws://host:port/ws (floor)
    model: str = "fake-steady"
    sessions: list[tuple[str, str]] = field(default_factory=list)
    deflate: bool = False
    count_types: bool = False

    @property
    def host_port(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        return parts.hostname or "127.0.0.1", parts.port or 80


async def run_stream(target: Target, s: Stream, prompt: str, i: int, timeout: float) -> Stream:
    """One answer, from sending the question to the terminal event."""
    loop = asyncio.get_running_loop()
    s.done = loop.create_future()
    s.t_start = time.perf_counter_ns()
    host, port = target.host_port
    conn: Any = None
    try:
        if target.kind == "direct":
            body = {
                "model": target.model,
                "messages": [{"role": "user", "content": prompt}],
                "stream": True,
            }

            def on_delta(text: str, t: int) -> None:
                s.last_id += 1
                if not s.t_first:
                    s.t_first = t
                s.arrivals.append(t)
                s.texts.append(text)

            s.t_send = time.perf_counter_ns()
            conn = await SSEClient.post(host, port, "/v1/chat/completions", body, on_delta)
            await asyncio.wait_for(conn.done, timeout)
            s.t_end = s.t_end or time.perf_counter_ns()
            s.wire_bytes = conn.bytes_in
            return s
        ready: asyncio.Future[None] | None = None
        msg: dict[str, Any] = {"routeKey": "stream_chat", "message": prompt}
        msg["model_id"] = target.model
        if target.kind == "vedika":
            ready = loop.create_future()
            session_id, _device = target.sessions[i % len(target.sessions)]
            msg["session_id"] = session_id
        handler = ws_handler(s, ready, target.count_types)
        conn = await _ws_connect(host, port, target.deflate, handler)
        if ready is not None:
            await asyncio.wait_for(ready, timeout)
        base = conn.bytes_in
        s.t_send = time.perf_counter_ns()
        conn.send_text(orjson.dumps(msg))
        await asyncio.wait_for(asyncio.shield(s.done), timeout)
        s.wire_bytes = conn.bytes_in - base
    except TimeoutError:
        s.error = s.error or "timeout"
    except (OSError, ConnectionError) as exc:
        s.error = s.error or f"{type(exc).__name__}: {exc}"[:120]
    finally:
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
    return s


async def _ws_connect(host: str, port: int, deflate: bool, handler: Any) -> WSClient:
    loop = asyncio.get_running_loop()

    def factory() -> WSClient:
        proto = WSClient(f"{host}:{port}", "/ws", deflate)
        proto.on_message = handler
        return proto

    _, proto = await loop.create_connection(factory, host, port)
    await asyncio.wait_for(asyncio.shield(proto.open), 30)
    return proto


@dataclass(slots=True)
class Level:
    """One step of a sweep: the schedule and everything that came back."""

    target: str
    concurrency: int
    duration_s: float  # nominal length of one answer
    warm_s: float
    measure_s: float
    t0: int = 0
    streams: list[Stream] = field(default_factory=list)
    sched_lag_ns: list[int] = field(default_factory=list)

    @property
    def window(self) -> tuple[int, int]:
        """The steady window: after one answer's length of ramp-up, until arrivals stop."""
        a = self.t0 + int(self.warm_s * 1e9)
        return a, a + int(self.measure_s * 1e9)


async def run_level(
    target: Target,
    concurrency: int,
    duration_s: float,
    prompt_for: Callable[[int], Prompt],
    *,
    warm_s: float | None = None,
    measure_s: float | None = None,
    timeout: float = 120,
    on_window: Callable[[str], Awaitable[None] | None] | None = None,
) -> Level:
    """Open loop: stream k starts at t0 + k * duration / concurrency, no matter what.

    `prompt_for(k)` gives the question and its known answer. `on_window("start"|"end")` is called
    at the edges of the steady window (CPU and RSS readings are taken there).
    """
    warm = duration_s if warm_s is None else warm_s
    measure = 2 * duration_s if measure_s is None else measure_s
    lvl = Level(target.kind, concurrency, duration_s, warm, measure)
    interval_ns = int(duration_s / concurrency * 1e9)
    total = int((warm + measure) * 1e9 // interval_ns)
    lvl.t0 = time.perf_counter_ns() + 50_000_000
    w0, w1 = lvl.window
    edges = [(w0, "start"), (w1, "end")]
    tasks: list[asyncio.Task[Stream]] = []
    for k in range(total):
        t_sched = lvl.t0 + k * interval_ns
        while edges and edges[0][0] <= t_sched:
            await _sleep_until(edges[0][0])
            if on_window is not None:
                res = on_window(edges.pop(0)[1])
                if res is not None:
                    await res
            else:
                edges.pop(0)
        await _sleep_until(t_sched)
        p = prompt_for(k)
        s = Stream(target.kind, expected=p.expected, n_tokens=p.n_tokens, t_sched=t_sched)
        lvl.sched_lag_ns.append(time.perf_counter_ns() - t_sched)
        tasks.append(asyncio.create_task(run_stream(target, s, p.text, k, timeout)))
        lvl.streams.append(s)
    for t_edge, name in edges:
        await _sleep_until(t_edge)
        if on_window is not None:
            res = on_window(name)
            if res is not None:
                await res
    await asyncio.gather(*tasks)
    return lvl


async def _sleep_until(t_ns: int) -> None:
    delay = (t_ns - time.perf_counter_ns()) / 1e9
    if delay > 0:
        await asyncio.sleep(delay)


# ---------------------------------------------------------------- figures


def pct(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no data."""
    if not values:
        return None
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return float(ordered[k])


def summary(values: list[float]) -> dict[str, float | int | None]:
    return {
        "n": len(values),
        "p50": pct(values, 50),
        "p90": pct(values, 90),
        "p99": pct(values, 99),
        "max": max(values) if values else None,
        "mean": sum(values) / len(values) if values else None,
    }


def level_figures(lvl: Level) -> dict[str, Any]:
    """Latencies (ms) from the steady window, correctness over every stream."""
    w0, w1 = lvl.window
    ttft, gaps, max_gap = [], [], 0
    chunks_in_window = 0
    tokens_in_window = 0.0
    for s in lvl.streams:
        if s.t_first and w0 <= s.t_send < w1:
            ttft.append((s.t_first - s.t_send) / 1e6)
        a = s.arrivals
        tokens_per_chunk = s.n_tokens / len(a) if a and s.n_tokens else 1.0
        for i, t in enumerate(a):
            if w0 <= t < w1:
                chunks_in_window += 1
                tokens_in_window += tokens_per_chunk
                if i:
                    gaps.append((t - a[i - 1]) / 1e6)
        for g in s.gaps_ns():
            max_gap = max(max_gap, g)
    bad = [s for s in lvl.streams if not s.ok]
    errors = [s.error for s in lvl.streams if s.error]
    return {
        "concurrency": lvl.concurrency,
        "streams": len(lvl.streams),
        "streams_failed": len(bad),
        # finished without an error, but with frames missing, reordered or text wrong
        "streams_lost_text": sum(1 for s in bad if not s.error and s.t_end),
        "errors": sorted({e for e in errors if e})[:5],
        "error_rate": len(bad) / len(lvl.streams) if lvl.streams else 0.0,
        "max_gap_ms": max_gap / 1e6,
        "ttft_ms": summary(ttft),
        "gap_ms": summary(gaps),
        "sched_lag_ms": summary([x / 1e6 for x in lvl.sched_lag_ns]),
        "window_s": (w1 - w0) / 1e9,
        "chunks_in_window": chunks_in_window,
        "tokens_in_window": round(tokens_in_window),
    }
