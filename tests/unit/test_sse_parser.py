"""The lean SSE reader: any split of the bytes gives the same events."""

from __future__ import annotations

from collections.abc import AsyncIterator

from hypothesis import given
from hypothesis import strategies as st

from vedika.models.providers.sse import sse_events

STREAM = (
    b": ping\n\n"
    b'event: message_start\r\ndata: {"a": 1}\r\n\r\n'
    b'data: {"b": 2}\n\n'
    b": keep-alive\n\n\n"
    b"data: line1\ndata: line2\n\n"
    b"data: [DONE]\n\n"
)
EXPECTED = [
    (b"message_start", b'{"a": 1}'),
    (b"", b'{"b": 2}'),
    (b"", b"line1\nline2"),
    (b"", b"[DONE]"),
]


async def _feed(parts: list[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def _collect(parts: list[bytes]) -> list[tuple[bytes, bytes]]:
    return [e async for e in sse_events(_feed(parts))]


async def test_whole_stream() -> None:
    assert await _collect([STREAM]) == EXPECTED


async def test_byte_by_byte() -> None:
    assert await _collect([STREAM[i : i + 1] for i in range(len(STREAM))]) == EXPECTED


async def test_one_whole_event_per_read() -> None:
    # What OpenAI-compatible servers send per token: the reader's short path, mixed with
    # reads it must not take that path for (a name alone, an event in two reads).
    parts = [
        b": ping\n\n",
        b"event: message_start\n",
        b'data: {"a": 1}\n\n',
        b'data: {"b": 2}\n\n',
        b"data: \n\n",
        b"data: line1\n",
        b"data: line2\n\n",
        b"data: two\n\ndata: events\n\n",
        b"data: cr\r\n\r\n",
        b"data: [DONE]\n\n",
    ]
    assert await _collect(parts) == [
        (b"message_start", b'{"a": 1}'),
        (b"", b'{"b": 2}'),
        (b"", b""),
        (b"", b"line1\nline2"),
        (b"", b"two"),
        (b"", b"events"),
        (b"", b"cr"),
        (b"", b"[DONE]"),
    ]


async def test_trailing_event_without_blank_line() -> None:
    assert await _collect([b"data: x"]) == [(b"", b"x")]


@given(st.lists(st.integers(min_value=1, max_value=len(STREAM) - 1), max_size=12))
def test_any_split(cuts: list[int]) -> None:
    import asyncio

    points = sorted(set(cuts))
    parts, last = [], 0
    for p in points:
        parts.append(STREAM[last:p])
        last = p
    parts.append(STREAM[last:])
    assert asyncio.run(_collect(parts)) == EXPECTED
