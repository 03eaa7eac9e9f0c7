"""A lean Server-Sent Events reader for the per-token hot path.

SDK iterators build objects per chunk and cost several times more CPU per token
(QUALITY.md). This splits raw bytes on newlines and hands back (event, data)
pairs; JSON parsing is left to the caller, once per event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator


async def sse_events(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[bytes, bytes]]:
    """Yield `(event_name, data)` for each event; comments and blank events are skipped."""
    buf = b""
    event = b""
    data: list[bytes] = []
    async for chunk in chunks:
        if (
            not buf
            and not data
            and chunk[:6] == b"data: "
            and chunk.find(b"\n") == len(chunk) - 2
            and chunk[-1] == 10  # b"\n"
            and b"\r" not in chunk
        ):
            # The common case: a read that is one whole event of one `data: ` line (what
            # OpenAI-compatible servers send per token). Its name is the event's, if an
            # `event:` line came alone before it.
            yield event, chunk[6:-2]
            event = b""
            continue
        buf = buf + chunk if buf else chunk
        start = 0
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            line = buf[start:nl]
            start = nl + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                if data:
                    yield event, b"\n".join(data)
                event, data = b"", []
                continue
            if line[0] == 58:  # b":" comment / keep-alive
                continue
            name, _, value = line.partition(b":")
            if value[:1] == b" ":
                value = value[1:]
            if name == b"data":
                data.append(value)
            elif name == b"event":
                event = value
        buf = buf[start:]
    # Lenient at the end of the body: a last line or event without its blank line
    # still counts (some servers end with `data: [DONE]` and no newline).
    line = buf.rstrip(b"\r")
    if line.startswith(b"data:"):
        value = line[5:]
        data.append(value[1:] if value[:1] == b" " else value)
    if data:
        yield event, b"\n".join(data)
