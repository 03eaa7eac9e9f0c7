"""When merging deltas into fewer chunks pays: only when this process is behind.

Merging (vedika.chat.chunks) saves a frame, an encode and a syscall per token, at the
price of up to one window of added latency on every gap. That trade is worth making
only when the CPU is the bottleneck: a fixed rule ("64 answers live") added 20 ms to
every gap at 100 streams on a core that had half its time to spare (issue 15). So the
process measures how late its event loop runs: a timer that should fire every
`PERIOD` seconds notes how late it fired, averaged over the last few; merging starts
once that average reaches `behind` (the loop is late because it has more work than
time), and stops when it falls back under half of it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sized

PERIOD = 0.05  # seconds between two looks at the loop
WEIGHT = 0.25  # of the newest lateness in the average (about the last 0.2 s)


class Coalescing:
    def __init__(self, *, window: float, min_streams: int, behind: float, live: Sized) -> None:
        self.window = window  # seconds a merged chunk may wait
        self.min_streams = min_streams  # and at least this many answers live here
        self.behind = behind  # seconds of average lateness that start merging (0: always)
        self.live = live
        self.lag = 0.0  # the loop's average lateness, seconds
        self._merging = behind <= 0
        self._task: asyncio.Task[None] | None = None

    def active(self) -> bool:
        """Whether a delta arriving now should wait to be merged."""
        return self.window > 0 and self._merging and len(self.live) >= self.min_streams

    def start(self) -> None:
        if self.window > 0 and self.behind > 0:
            self._task = asyncio.create_task(self._watch(), name="vedika-loop-lag")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            expected = loop.time() + PERIOD
            await asyncio.sleep(PERIOD)
            self.note(loop.time() - expected)

    def note(self, late: float) -> None:
        """One measured lateness of the loop, in seconds."""
        self.lag += WEIGHT * (max(late, 0.0) - self.lag)
        if self.lag >= self.behind:
            self._merging = True
        elif self.lag < self.behind / 2:
            self._merging = False
