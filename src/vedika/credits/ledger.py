"""Vedika coins: a daily allowance per device, charged atomically per message.

One row per (device, UTC day) holds what was used; a charge is a single
conditional upsert (`used + n <= allowance`, on the row the conflict locks), so
concurrent sends can never overdraw, on SQLite or PostgreSQL, in one process or many.
Every change is also written to the ledger in the same transaction.

Coins an admin grants are kept until spent (`coin_grants`, not reset at midnight): a
turn the day's allowance cannot pay in full is paid from them, by the same kind of
conditional UPDATE (`charge_granted` in the ledger; a refund goes back where the
charge came from). The balance is what is left of the day plus what is left of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Integer, and_, bindparam, case, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from vedika.errors import CreditsExhausted
from vedika.ids import uuid7
from vedika.protocol import iso, today, utcnow
from vedika.store.dialect import insert_for, insert_ignore, upsert_add
from vedika.store.direct import run as run_direct
from vedika.store.engine import Store
from vedika.store.pointread import PointRead
from vedika.store.tables import coin_days, coin_grants, coin_ledger

# Built once, values at execute time (every turn charges): see store/conversations.py.
_DAY = and_(coin_days.c.device_id == bindparam("b_device"), coin_days.c.day == bindparam("b_day"))
_AMOUNT = bindparam("b_amount", type_=Integer)
_GRANTED = (
    select(coin_grants.c.balance)
    .where(coin_grants.c.device_id == bindparam("b_device"))
    .scalar_subquery()
)
# One row always (scalar subqueries): today's allowance and use (NULL before the day's
# first charge) and the granted coins left (NULL if none were ever granted).
BALANCE_COLUMNS = (  # also part of a turn's first look (vedika.chat.preflight)
    select(coin_days.c.allowance).where(_DAY).scalar_subquery().label("allowance"),
    select(coin_days.c.used).where(_DAY).scalar_subquery().label("used"),
    _GRANTED.label("granted"),
)
_BALANCE = select(*BALANCE_COLUMNS)
_BALANCE_READ = PointRead(_BALANCE)  # a page load and every turn read it
_OPEN_DAY = {dialect: insert_ignore(dialect, coin_days) for dialect in ("sqlite", "postgresql")}


def _open_and_take(dialect: str) -> Any:
    """The day's row opened (`_OPEN_DAY`) and the charge taken from it, in one statement
    (on PostgreSQL one round trip, where the insert and a conditional UPDATE were two).
    The day's first charge inserts its row with the charge taken if the allowance
    covers it, else with nothing taken (used = 0). A later one adds to `used` if
    `used + amount <= allowance`, on the row the conflict locked, as the UPDATE did. A
    row with `used` above 0 comes back only when the coins were taken: a first charge
    the allowance cannot cover returns used = 0, a later one returns no row."""
    stmt = insert_for(dialect, coin_days).values(
        device_id=bindparam("b_device"),
        day=bindparam("b_day"),
        allowance=bindparam("b_daily", type_=Integer),
        used=case((bindparam("b_daily", type_=Integer) >= _AMOUNT, _AMOUNT), else_=0),
    )
    return stmt.on_conflict_do_update(
        index_elements=[coin_days.c.device_id, coin_days.c.day],
        set_={"used": coin_days.c.used + _AMOUNT},
        where=coin_days.c.used + _AMOUNT <= coin_days.c.allowance,
    ).returning(coin_days.c.allowance, coin_days.c.used, _GRANTED.label("granted"))


_OPEN_AND_TAKE = {dialect: _open_and_take(dialect) for dialect in ("sqlite", "postgresql")}


def _take_and_record() -> Any:
    """PostgreSQL: `_open_and_take` and, when it took the coins, the charge's ledger
    entry, in one statement (one round trip, where they were two). The row is
    `_open_and_take`'s with the entry's id (NULL when nothing was taken). SQLite has no
    INSERT inside WITH: there they stay two statements."""
    take = _open_and_take("postgresql").cte("take")
    entry = (
        coin_ledger.insert()
        .from_select(
            ["id", "device_id", "day", "amount", "kind", "message_id", "created_at"],
            select(
                bindparam("e_id", type_=coin_ledger.c.id.type),
                bindparam("b_device", type_=coin_ledger.c.device_id.type),
                bindparam("b_day", type_=coin_ledger.c.day.type),
                -_AMOUNT,
                bindparam("e_kind", type_=coin_ledger.c.kind.type),
                bindparam("e_message", type_=coin_ledger.c.message_id.type),
                bindparam("e_at", type_=coin_ledger.c.created_at.type),
            ).where(take.c.used > 0),
        )
        .returning(coin_ledger.c.id)
        .cte("entry")
    )
    return select(
        take.c.allowance,
        take.c.used,
        take.c.granted,
        select(entry.c.id).scalar_subquery().label("entry"),
    )


_TAKE_AND_RECORD = _take_and_record()
_GIVE_BACK = update(coin_days).where(_DAY).values(used=coin_days.c.used - _AMOUNT)
_OWNER = coin_grants.c.device_id == bindparam("b_device")
_TAKE_GRANTED = (
    update(coin_grants)
    .where(and_(_OWNER, coin_grants.c.balance >= _AMOUNT))
    .values(balance=coin_grants.c.balance - _AMOUNT)
    .returning(coin_grants.c.balance)
)
_GIVE_BACK_GRANTED = (
    update(coin_grants).where(_OWNER).values(balance=coin_grants.c.balance + _AMOUNT)
)
_ADD_GRANTED = {
    dialect: upsert_add(dialect, coin_grants, key="device_id", column="balance")
    for dialect in ("sqlite", "postgresql")
}
CHARGE, CHARGE_GRANTED, REFUND, GRANT = "charge", "charge_granted", "refund", "grant"
SPENDING = (CHARGE, CHARGE_GRANTED, REFUND)  # the entries of turns (not of grants)
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
    granted: int = 0  # granted coins left (kept past midnight)

    @property
    def daily_remaining(self) -> int:
        """What is left of today's allowance (gone at midnight)."""
        return max(self.daily - self.used, 0)

    @property
    def remaining(self) -> int:
        return self.daily_remaining + self.granted

    @classmethod
    def of(cls, row: Any, daily: int) -> Balance:
        """From a `_BALANCE` row (or None): the plan's `daily` before the day's first
        charge."""
        if row is None:
            return cls(daily=daily, used=0)
        allowance, used, granted = row
        if allowance is None:
            return cls(daily=daily, used=0, granted=granted or 0)
        return cls(daily=allowance, used=used, granted=granted or 0)


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
    return Balance.of(row, daily)


async def balance_in(conn: AsyncConnection, *, device_id: str, daily: int) -> Balance:
    row = (await conn.execute(_BALANCE, {"b_device": device_id, "b_day": today()})).first()
    return Balance.of(row, daily)


def charge(
    conn: Connection, *, device_id: str, amount: int, daily: int, message_id: str
) -> tuple[Balance, str | None]:
    """Take `amount` coins inside the caller's transaction or raise CreditsExhausted.

    Returns the balance after the charge and the ledger entry's id (None for free models).
    """
    day = today()
    if amount > 0:
        params = {"b_device": device_id, "b_day": day, "b_amount": amount}
        if conn.dialect.name == "postgresql":
            txn = uuid7()
            entry = {"e_id": txn, "e_kind": CHARGE, "e_message": message_id, "e_at": utcnow()}
            row = run_direct(conn, _TAKE_AND_RECORD, params | {"b_daily": daily} | entry).first()
            if row is not None and row.used > 0:
                return Balance(daily=row.allowance, used=row.used, granted=row.granted or 0), txn
        else:
            row = run_direct(conn, _OPEN_AND_TAKE["sqlite"], params | {"b_daily": daily}).first()
        if row is not None and row.used > 0:
            txn = _record(
                conn,
                device_id=device_id,
                day=day,
                amount=-amount,
                kind=CHARGE,
                message_id=message_id,
            )
            return Balance(daily=row.allowance, used=row.used, granted=row.granted or 0), txn
        # The day cannot pay it in full: the granted coins pay it whole, if they can (the
        # day's rest stays for cheaper turns).
        if run_direct(conn, _TAKE_GRANTED, params).first() is None:
            current = _balance_of(conn, device_id=device_id, daily=daily)
            raise CreditsExhausted(
                exhausted_message(current.daily),
                details={
                    "vedika_coins_remaining": current.remaining,
                    "daily_credits": current.daily,
                },
            )
        txn = _record(
            conn,
            device_id=device_id,
            day=day,
            amount=-amount,
            kind=CHARGE_GRANTED,
            message_id=message_id,
        )
        return _balance_of(conn, device_id=device_id, daily=daily), txn
    run_direct(
        conn,
        _OPEN_DAY[conn.dialect.name],
        {"device_id": device_id, "day": day, "allowance": daily, "used": 0},
    )
    return _balance_of(conn, device_id=device_id, daily=daily), None


def _balance_of(conn: Connection, *, device_id: str, daily: int) -> Balance:
    row = run_direct(conn, _BALANCE, {"b_device": device_id, "b_day": today()}).first()
    return Balance.of(row, daily)


def refund(conn: Connection, *, device_id: str, message_id: str) -> int:
    """Give back what `message_id` was charged (once). Returns the coins returned."""
    rows = run_direct(conn, _ENTRIES_OF, {"b_device": device_id, "b_message": message_id}).all()
    net = sum(r.amount for r in rows)
    if net >= 0 or not rows:
        return 0
    charged = next(r for r in rows if r.kind in (CHARGE, CHARGE_GRANTED))
    amount = -net
    params = {"b_device": device_id, "b_day": charged.day, "b_amount": amount}
    run_direct(conn, _GIVE_BACK_GRANTED if charged.kind == CHARGE_GRANTED else _GIVE_BACK, params)
    _record(
        conn,
        device_id=device_id,
        day=charged.day,
        amount=amount,
        kind=REFUND,
        message_id=message_id,
    )
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
    run_direct(
        conn,
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


async def grant(conn: AsyncConnection, *, device_id: str, amount: int, daily: int) -> Balance:
    """Give `device_id` (an owner key) `amount` coins, kept until spent, inside the
    caller's transaction; the ledger gets a `grant` entry (an admin's;
    docs/accounts.md). Returns the balance after it."""
    await conn.execute(_ADD_GRANTED[conn.dialect.name], {"device_id": device_id, "balance": amount})
    await conn.execute(
        _RECORD,
        {
            "id": uuid7(),
            "device_id": device_id,
            "day": today(),
            "amount": amount,
            "kind": GRANT,
            "message_id": None,
            "created_at": utcnow(),
        },
    )
    return await balance_in(conn, device_id=device_id, daily=daily)


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
