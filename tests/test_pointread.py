"""Point reads (vedika.store.pointread) read what SQLAlchemy reads, on both databases,
and a database that cannot be reached is a ConnectionError (the API's 503)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import DATABASES, sqlite_url
from vedika.credits import ledger
from vedika.store.engine import Store, make_engine, migrate
from vedika.store.pointread import PointRead
from vedika.store.tables import coin_days, conversations


@pytest.fixture(params=DATABASES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = sqlite_url(tmp_path / "vedika.db")
    else:
        url = request.getfixturevalue("fresh_pg")
    migrate(url)
    return url


async def test_the_balance_read_matches_sqlalchemys(db_url: str) -> None:
    store = Store(make_engine(db_url))
    try:
        assert await ledger.balance(store, device_id="dev-a", daily=20) == ledger.Balance(20, 0)
        async with store.tx() as conn:
            await ledger.charge(conn, device_id="dev-a", amount=3, daily=20, message_id="m1")
        async with store.tx() as conn:
            await ledger.charge(conn, device_id="dev-b", amount=1, daily=20, message_id="m2")
        reads = await asyncio.gather(
            *(ledger.balance(store, device_id=d, daily=20) for d in ["dev-a", "dev-b"] * 20)
        )
        assert set(reads[0::2]) == {ledger.Balance(daily=20, used=3)}
        assert set(reads[1::2]) == {ledger.Balance(daily=20, used=1)}
        async with store.read() as conn:
            assert await ledger.balance_in(conn, device_id="dev-a", daily=20) == reads[0]
    finally:
        await store.close()


def test_only_columns_the_driver_gives_as_they_are() -> None:
    PointRead(select(coin_days.c.allowance, coin_days.c.day))
    with pytest.raises(TypeError):
        PointRead(select(conversations.c.updated_at))  # a timestamp needs converting


async def test_an_unreachable_database_is_a_connection_error() -> None:
    store = Store(make_engine("postgresql+asyncpg://postgres@127.0.0.1:1/none"))
    try:
        with pytest.raises(ConnectionError):
            await ledger.balance(store, device_id="dev-a", daily=20)
    finally:
        await store.close()
