"""Point reads (vedika.store.pointread) read what SQLAlchemy reads, on both databases
(timestamps, JSON, cursors, search), and a database that cannot be reached is a
ConnectionError (the API's 503)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Connection, bindparam, select

from tests.conftest import DATABASES, sqlite_url
from vedika.credits import ledger
from vedika.protocol import aware
from vedika.store import conversations as data
from vedika.store import organise
from vedika.store.conversations import MESSAGE_VIEW
from vedika.store.engine import Store, make_engine, migrate
from vedika.store.pointread import PointRead
from vedika.store.tables import conversations


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
        await store.run_tx(
            lambda c: ledger.charge(c, device_id="dev-a", amount=3, daily=20, message_id="m1")
        )
        await store.run_tx(
            lambda c: ledger.charge(c, device_id="dev-b", amount=1, daily=20, message_id="m2")
        )
        reads = await asyncio.gather(
            *(ledger.balance(store, device_id=d, daily=20) for d in ["dev-a", "dev-b"] * 20)
        )
        assert set(reads[0::2]) == {ledger.Balance(daily=20, used=3)}
        assert set(reads[1::2]) == {ledger.Balance(daily=20, used=1)}
        async with store.read() as conn:
            assert await ledger.balance_in(conn, device_id="dev-a", daily=20) == reads[0]
    finally:
        await store.close()


async def test_timestamps_json_and_cursors_convert_as_sqlalchemys(db_url: str) -> None:
    store = Store(make_engine(db_url))
    t0 = datetime(2026, 12, 3, 10, 0, 0, 123456, tzinfo=UTC)
    try:

        def write(conn: Connection) -> None:
            for i in range(3):
                data.create_conversation(
                    conn,
                    conversation_id=f"c{i}",
                    device_id="dev-a",
                    title=f"Title {i}",
                    model="m",
                    now=t0 + timedelta(minutes=i),
                    message_count=1,
                )
            data.insert_message(
                conn,
                id="m1",
                conversation_id="c1",
                role="assistant",
                content="Héllo",
                status="complete",
                citations=[{"n": 1, "url": "https://example.org/ü"}],
                routing={"reason": "why", "confidence": 0.5},
                created_at=t0,
                updated_at=t0,
            )

        await store.run_tx(write)

        async def page(
            limit: int, after: organise.Listed | None = None, q: str | None = None
        ) -> tuple[list[organise.Listed], int]:
            cursor = organise.Cursor(after.pinned, after.updated_at, after.id) if after else None
            return await organise.page(
                store, device_id="dev-a", limit=limit, cursor=cursor, q=q, archived=False
            )

        first, total = await page(2)
        assert total == 3 and [c.id for c in first] == ["c2", "c1"]
        assert aware(first[0].updated_at) == t0 + timedelta(minutes=2)
        rest, _ = await page(2, first[-1])
        assert [c.id for c in rest] == ["c0"]
        beyond = await page(2, rest[-1])
        assert beyond == ([], 3)  # no row to carry the count: it is counted apart
        none = await organise.page(
            store, device_id="dev-b", limit=2, cursor=None, q=None, archived=False
        )
        assert none == ([], 0)
        found, _ = await page(5, q="héllo")  # the message's text, by full text
        assert [c.id for c in found] == ["c1"]
        assert (
            await data.listed_conversation(store, conversation_id="c1", device_id="dev-b") is None
        )
        async with store.read() as conn:
            expected = [tuple(r) for r in await data.list_messages(conn, conversation_id="c1")]
        got = await data.read_messages(store, conversation_id="c1")
        assert got == expected and got[0][MESSAGE_VIEW.index("citations")][0]["n"] == 1
    finally:
        await store.close()


async def test_a_read_only_sqlalchemy_can_run_still_runs(db_url: str) -> None:
    """A list expanded into IN is SQLAlchemy's to run (store.direct plans no such
    statement): the point read goes through the engine instead of failing."""
    store = Store(make_engine(db_url))
    ids = select(conversations.c.id).where(
        conversations.c.id.in_(bindparam("b_ids", expanding=True))
    )
    try:
        await store.run_tx(
            lambda conn: [
                data.create_conversation(
                    conn,
                    conversation_id=c,
                    device_id="dev-a",
                    title=c,
                    model="m",
                    now=datetime(2026, 12, 3, tzinfo=UTC),
                    message_count=0,
                )
                for c in ("c1", "c2", "c3")
            ]
        )
        rows = await store.all(PointRead(ids.order_by(conversations.c.id)), {"b_ids": ["c1", "c3"]})
        assert rows == [("c1",), ("c3",)]
    finally:
        await store.close()


async def test_an_unreachable_database_is_a_connection_error() -> None:
    store = Store(make_engine("postgresql+asyncpg://postgres@127.0.0.1:1/none"))
    try:
        with pytest.raises(ConnectionError):
            await ledger.balance(store, device_id="dev-a", daily=20)
    finally:
        await store.close()


@pytest.mark.postgres
async def test_reads_go_on_after_the_server_ends_their_connections(fresh_pg: str) -> None:
    """PostgreSQL restarted or an admin ended the backends: the next reads open new
    connections instead of failing on the dead ones, and never hold more than their
    share."""
    import asyncpg

    from tests.conftest import PG_ADMIN
    from vedika.store.pointread import PG_READERS

    await asyncio.to_thread(migrate, fresh_pg)
    name = fresh_pg.rsplit("/", 1)[1]
    store = Store(make_engine(fresh_pg))
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        reads = [ledger.balance(store, device_id=f"dev-{i}", daily=20) for i in range(20)]
        assert all(b.remaining == 20 for b in await asyncio.gather(*reads))
        ended = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1",
            name,
        )
        assert 1 <= ended <= PG_READERS + 5  # the point reads' and the engine's pool
        await asyncio.sleep(0.2)  # the drivers see their sockets closed
        reads = [ledger.balance(store, device_id=f"dev-{i}", daily=20) for i in range(20)]
        assert all(b.remaining == 20 for b in await asyncio.gather(*reads))
        open_now = await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", name
        )
        assert open_now <= PG_READERS
    finally:
        await admin.close()
        await store.close()
