"""Granted coins in the ledger (vedika.credits.ledger), on SQLite in memory: the day pays
first, the grant pays a charge the day cannot pay in full, and a refund goes back to
where its charge was taken from."""

from __future__ import annotations

from functools import partial

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from vedika.credits import ledger
from vedika.errors import CreditsExhausted
from vedika.store import tables

OWNER = "account@a1"
DAILY = 10


async def test_a_refund_goes_back_where_its_charge_came_from() -> None:
    engine = create_async_engine("sqlite+aiosqlite://")
    try:
        async with engine.begin() as conn:
            await conn.run_sync(tables.metadata.create_all)
            granted = await ledger.grant(conn, device_id=OWNER, amount=7, daily=DAILY)
            assert (granted.remaining, granted.granted) == (DAILY + 7, 7)

            async def charge(amount: int, message_id: str) -> ledger.Balance:
                run = partial(
                    ledger.charge,
                    device_id=OWNER,
                    amount=amount,
                    daily=DAILY,
                    message_id=message_id,
                )
                return (await conn.run_sync(run))[0]

            async def refund(message_id: str) -> int:
                return await conn.run_sync(
                    partial(ledger.refund, device_id=OWNER, message_id=message_id)
                )

            bal = await charge(8, "m1")  # the day: 2 left
            assert (bal.daily_remaining, bal.granted) == (2, 7)
            bal = await charge(5, "m2")  # more than the day's 2: the grant
            assert (bal.daily_remaining, bal.granted) == (2, 2)
            with pytest.raises(CreditsExhausted):
                await charge(3, "m3")  # neither 2 nor 2 pays 3

            assert await refund("m2") == 5
            bal = await ledger.balance_in(conn, device_id=OWNER, daily=DAILY)
            assert (bal.daily_remaining, bal.granted) == (2, 7)  # back to the grant
            assert await refund("m2") == 0  # once
            assert await refund("m1") == 8
            bal = await ledger.balance_in(conn, device_id=OWNER, daily=DAILY)
            assert (bal.daily_remaining, bal.granted, bal.remaining) == (DAILY, 7, DAILY + 7)
    finally:
        await engine.dispose()
