"""A new turn's first look at its device, before the turn's model call may go out early.

Two questions guard that early call: may the device start another answer (the
concurrent-answers cap), and can it pay for this one. Asked one after the other they
were two point reads, two round trips; here they are one statement (the count and the
balance as scalar subqueries), read the first time either is asked. Both are looks
only: the transaction that stores the turn counts and charges again, under its lock.
"""

from __future__ import annotations

from sqlalchemy import select

from vedika.credits import ledger
from vedika.protocol import today
from vedika.store import conversations as data
from vedika.store.engine import Store
from vedika.store.pointread import PointRead

_LOOK = PointRead(select(data.streaming_count().label("live"), *ledger.BALANCE_COLUMNS))


class Preflight:
    """The device's answers streaming now and its balance, read once, on first use."""

    __slots__ = ("_daily", "_device_id", "_read", "_store")

    def __init__(self, store: Store, *, device_id: str, daily: int) -> None:
        self._store = store
        self._device_id = device_id
        self._daily = daily
        self._read: tuple[int, ledger.Balance] | None = None

    async def live(self) -> int:
        """How many of the device's answers are streaming."""
        return (await self._look())[0]

    async def balance(self) -> ledger.Balance:
        return (await self._look())[1]

    async def _look(self) -> tuple[int, ledger.Balance]:
        if self._read is None:
            row = await self._store.first(_LOOK, {"b_device": self._device_id, "b_day": today()})
            live = int(row[0] or 0) if row else 0
            self._read = live, ledger.Balance.of(row[1:] if row else None, self._daily)
        return self._read
