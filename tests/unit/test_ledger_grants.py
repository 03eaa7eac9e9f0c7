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


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest) -> str:
    if request.param == "sqlite":
        return "sqlite+aiosqlite://"
    return str(request.getfixturevalue("fresh_pg"))


async def test_a_days_first_charge_above_its_allowance(ledger_url: str) -> None:
    """The day's first charge opens its row and takes from it in one statement
    (ledger._open_and_take): one the allowance cannot cover takes nothing from the
    day (its row opened at 0), is paid whole from the grant if it can be, and is
    refused with nothing written if not."""
    engine = create_async_engine(ledger_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(tables.metadata.create_all)
        for owner, grant, amount in (("rich", 15, 12), ("poor", 3, 12)):
            async with engine.begin() as conn:
                await ledger.grant(conn, device_id=owner, amount=grant, daily=DAILY)
            run = partial(ledger.charge, device_id=owner, amount=amount, daily=DAILY)
            if owner == "poor":
                with pytest.raises(CreditsExhausted):
                    async with engine.begin() as conn:
                        await conn.run_sync(partial(run, message_id="p1"))
                async with engine.begin() as conn:
                    bal = await ledger.balance_in(conn, device_id=owner, daily=DAILY)
                assert (bal.daily_remaining, bal.granted) == (DAILY, 3)
                continue
            async with engine.begin() as conn:
                bal, txn = await conn.run_sync(partial(run, message_id="r1"))
            assert txn is not None
            assert (bal.daily_remaining, bal.granted) == (DAILY, 3)  # the grant paid
            async with engine.begin() as conn:
                bal, _ = await conn.run_sync(partial(run, amount=4, message_id="r2"))
            assert (bal.daily_remaining, bal.granted) == (DAILY - 4, 3)  # the day paid
            async with engine.begin() as conn:
                bal, _ = await conn.run_sync(partial(run, amount=6, message_id="r3"))
            assert (bal.daily_remaining, bal.granted) == (0, 3)  # its last coin
            with pytest.raises(CreditsExhausted):
                async with engine.begin() as conn:
                    await conn.run_sync(partial(run, amount=4, message_id="r4"))
    finally:
        await engine.dispose()
