"""Vedika coins: a daily allowance per device, charged atomically per message.

One row per (device, UTC day) holds what was used; a charge is a single
conditional UPDATE (`used + n <= allowance`), so concurrent sends can never
overdraw, on SQLite or PostgreSQL, in one process or many. Every change is also
written to the ledger in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Integer, and_, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from vedika.errors import CreditsExhausted
from vedika.ids import uuid7
from vedika.protocol import iso, utcnow
from vedika.store.dialect import insert_ignore
from vedika.store.engine import Store
from vedika.store.pointread import PointRead
from vedika.store.tables import coin_days, coin_ledger

# Built once, values at execute time (every turn charges): see store/conversations.py.
_DAY = and_(coin_days.c.device_id == bindparam("b_device"), coin_days.c.day == bindparam("b_day"))
_AMOUNT = bindparam("b_amount", type_=Integer)
_BALANCE = select(coin_days.c.allowance, coin_days.c.used).where(_DAY)
_BALANCE_READ = PointRead(_BALANCE)  # a page load and every turn read it
_OPEN_DAY = {dialect: insert_ignore(dialect, coin_days) for dialect in ("sqlite", "postgresql")}
_TAKE = (
    update(coin_days)
    .where(and_(_DAY, coin_days.c.used + _AMOUNT <= coin_days.c.allowance))
    .values(used=coin_days.c.used + _AMOUNT)
    .returning(coin_days.c.allowance, coin_days.c.used)
)
_GIVE_BACK = update(coin_days).where(_DAY).values(used=coin_days.c.used - _AMOUNT)
_ENTRIES_OF = select(coin_ledger.c.amount, coin_ledger.c.day, coin_ledger.c.kind).where(
    and_(
        coin_ledger.c.device_id == bindparam("b_device"),
        coin_ledger.c.message_id == bindparam("b_message"),
    )
)
_RECORD = coin_ledger.insert()


@dataclass(frozen=True, slots=True)
class Balance:
    daily: int
    used: int

    @property
    def remaining(self) -> int:
        return max(self.daily - self.used, 0)


def today() -> str:
    return utcnow().strftime("%Y-%m-%d")


def resets_at() -> datetime:
    now = utcnow()
    return datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)


def exhausted_message(daily: int) -> str:
    # "exhausted" is what the original web client looks for to show its own
    # out-of-coins message (app/chat/[chatId]/page.tsx); the rest says what and when.
    return (
        f"Today's Vedika coins are exhausted: you have used all {daily}. "
        f"They come back at midnight UTC ({iso(resets_at())})."
    )


async def balance(store: Store, *, device_id: str, daily: int) -> Balance:
    row = await store.first(_BALANCE_READ, {"b_device": device_id, "b_day": today()})
    if row is None:
        return Balance(daily=daily, used=0)
    allowance, used = row
    return Balance(daily=allowance, used=used)


async def balance_in(conn: AsyncConnection, *, device_id: str, daily: int) -> Balance:
    row = (await conn.execute(_BALANCE, {"b_device": device_id, "b_day": today()})).first()
    if row is None:
        return Balance(daily=daily, used=0)
    return Balance(daily=row.allowance, used=row.used)


def charge(
    conn: Connection, *, device_id: str, amount: int, daily: int, message_id: str
) -> tuple[Balance, str | None]:
    """Take `amount` coins inside the caller's transaction or raise CreditsExhausted.

    Returns the balance after the charge and the ledger entry's id (None for free models).
    """
    day = today()
    conn.execute(
        _OPEN_DAY[conn.dialect.name],
        {"device_id": device_id, "day": day, "allowance": daily, "used": 0},
    )
    if amount > 0:
        params = {"b_device": device_id, "b_day": day, "b_amount": amount}
        row = conn.execute(_TAKE, params).first()
        if row is None:
            current = _balance_of(conn, device_id=device_id, daily=daily)
            raise CreditsExhausted(
                exhausted_message(current.daily),
                details={
                    "vedika_coins_remaining": current.remaining,
                    "daily_credits": current.daily,
                },
            )
        txn = _record(
            conn, device_id=device_id, day=day, amount=-amount, kind="charge", message_id=message_id
        )
        return Balance(daily=row.allowance, used=row.used), txn
    return _balance_of(conn, device_id=device_id, daily=daily), None


def _balance_of(conn: Connection, *, device_id: str, daily: int) -> Balance:
    row = conn.execute(_BALANCE, {"b_device": device_id, "b_day": today()}).first()
    return Balance(daily=daily, used=0) if row is None else Balance(row.allowance, row.used)


def refund(conn: Connection, *, device_id: str, message_id: str) -> int:
    """Give back what `message_id` was charged (once). Returns the coins returned."""
    rows = conn.execute(_ENTRIES_OF, {"b_device": device_id, "b_message": message_id}).all()
    net = sum(r.amount for r in rows)
    if net >= 0 or not rows:
        return 0
    day = next(r.day for r in rows if r.kind == "charge")
    amount = -net
    conn.execute(_GIVE_BACK, {"b_device": device_id, "b_day": day, "b_amount": amount})
    _record(conn, device_id=device_id, day=day, amount=amount, kind="refund", message_id=message_id)
    return amount


def _record(
    conn: Connection,
    *,
    device_id: str,
    day: str,
    amount: int,
    kind: str,
    message_id: str | None,
) -> str:
    txn = uuid7()
    conn.execute(
        _RECORD,
        {
            "id": txn,
            "device_id": device_id,
            "day": day,
            "amount": amount,
            "kind": kind,
            "message_id": message_id,
            "created_at": utcnow(),
        },
    )
    return txn


_ADD_ALLOWANCE = (
    update(coin_days)
    .where(_DAY)
    .values(allowance=coin_days.c.allowance + _AMOUNT)
    .returning(coin_days.c.allowance, coin_days.c.used)
)


async def grant(conn: AsyncConnection, *, device_id: str, amount: int, daily: int) -> Balance:
    """Give `device_id` (an owner key) `amount` more coins today, inside the caller's
    transaction: today's allowance grows by `amount` and the ledger gets a `grant`
    entry (an admin's; docs/accounts.md). Returns the balance after it."""
    day = today()
    await conn.execute(
        _OPEN_DAY[conn.dialect.name],
        {"device_id": device_id, "day": day, "allowance": daily, "used": 0},
    )
    row = (
        await conn.execute(
            _ADD_ALLOWANCE, {"b_device": device_id, "b_day": day, "b_amount": amount}
        )
    ).one()
    await conn.execute(
        _RECORD,
        {
            "id": uuid7(),
            "device_id": device_id,
            "day": day,
            "amount": amount,
            "kind": "grant",
            "message_id": None,
            "created_at": utcnow(),
        },
    )
    return Balance(daily=row.allowance, used=row.used)


async def transactions(store: Store, *, device_id: str, limit: int = 100) -> list[dict[str, Any]]:
    async with store.read() as conn:
        rows = (
            await conn.execute(
                select(coin_ledger)
                .where(coin_ledger.c.device_id == device_id)
                .order_by(coin_ledger.c.created_at.desc(), coin_ledger.c.id.desc())
                .limit(limit)
            )
        ).all()
    return [
        {
            "transaction_id": r.id,
            "amount": r.amount,
            "type": r.kind,
            "message_id": r.message_id,
            "day": r.day,
            "created_at": iso(r.created_at),
        }
        for r in rows
    ]
