"""What the SQLite store does for its speed, checked where it could silently stop:
which connection a write gets."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import Connection

from tests.conftest import sqlite_url
from vedika.store.engine import Store, make_engine, migrate


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = sqlite_url(tmp_path / "vedika.db")
    migrate(url)
    return url


def _raw(conn: Connection) -> int:
    return id(conn.connection.dbapi_connection)


async def test_writes_one_after_another_reuse_the_connection_used_last(url: str) -> None:
    """In WAL mode a connection drops its page cache when another one wrote since its
    last use: the pool hands out the connection used last, so back-to-back writes keep
    theirs warm (handed round in turn, a turn read its pages again, 110 preads)."""
    store = Store(make_engine(url))
    try:
        release = asyncio.Event()

        async def hold() -> None:
            async with store.read() as conn:
                await conn.exec_driver_sql("select 1")
                await release.wait()

        holders = [asyncio.create_task(hold()) for _ in range(4)]
        await asyncio.sleep(0.2)  # the pool now has four connections open
        release.set()
        await asyncio.gather(*holders)
        used = [await store.run_tx(_raw) for _ in range(4)]
    finally:
        await store.close()
    assert len(set(used)) == 1, used
