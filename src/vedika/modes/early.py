"""Sending a turn's model call while the turn is still being stored.

Storing a turn (one transaction: conversation, charge, question, answer placeholder)
takes a few milliseconds; a model takes tens to hundreds of milliseconds to its first
token. A mode whose call needs nothing from the database asks for it to go out first
(`Mode.prefetcher`): Search does for a question with no sources that starts a new
conversation (its messages are the system prompt and the question). The two waits
then overlap: the first token is ready about as soon as the turn is committed.

Nothing reaches a client before the commit: the early call only buffers the first
delta. If storing fails (no coins left, a bad conversation id, the database down), the
call is closed at once, which tells the upstream to stop. `VEDIKA_EARLY_START=false`
turns this off (the call is then sent after the commit, as for every other turn).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from vedika.models.providers import Delta, GenerationRequest, Provider


class EarlyCall:
    """A model call already under way; its first delta is awaited in a task of its own
    so the call progresses while the caller does other work."""

    def __init__(self, provider: Provider, request: GenerationRequest) -> None:
        self.request = request
        self._stream = provider.stream(request)
        self._first: asyncio.Future[Delta] = asyncio.ensure_future(anext(self._stream))
        self._taken = False

    def deltas(self) -> AsyncIterator[Delta]:
        """The call's deltas from the first (once: the stream cannot be rewound)."""
        if self._taken:
            raise RuntimeError("this early call was already taken")
        self._taken = True
        return self._deltas()

    async def _deltas(self) -> AsyncIterator[Delta]:
        try:
            first = await self._first
        except StopAsyncIteration:
            return
        yield first
        async for delta in self._stream:
            yield delta

    async def cancel(self) -> None:
        """Abandon the call (its turn was not stored): close the upstream connection."""
        self._first.cancel()
        await asyncio.wait([self._first])
        if not self._first.cancelled():
            self._first.exception()  # a provider error: moot now, but marked as seen
        aclose = getattr(self._stream, "aclose", None)  # providers are async generators
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
