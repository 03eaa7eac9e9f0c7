"""The PostgreSQL pool's round trips (vedika.store.liveness, Store.read): a connection
in steady use is lent without a ping, a read runs without BEGIN and ROLLBACK, a
connection the server ended is replaced without failing the read, and one idle for
long enough is pinged first. A proxy reads what the driver sends (tests/support/
pg_wire.py): each simple query (BEGIN, COMMIT, ROLLBACK) and each "sync" (one round
trip of a prepared statement: a read, or the ping's empty query)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import PG_ADMIN
from tests.support.client import Api
from tests.support.pg_wire import PgWire
from tests.support.server import serving
from vedika.store import liveness
from vedika.store.engine import Store, make_engine, migrate
from vedika.store.pg_readers import Readers

pytestmark = pytest.mark.postgres


@pytest.fixture
def wire() -> Iterator[PgWire]:
    proxy = PgWire().start()
    try:
        yield proxy
    finally:
        proxy.close()


def through(url: str, wire: PgWire) -> str:
    """`url` by way of the proxy, in plain text."""
    return url.replace("127.0.0.1:5432", f"127.0.0.1:{wire.port}") + "?ssl=disable"


@pytest.fixture
async def store(fresh_pg: str, wire: PgWire) -> AsyncIterator[Store]:
    s = Store(make_engine(through(fresh_pg, wire)))
    try:
        yield s
    finally:
        await s.close()


async def read_one(s: Store) -> int:
    async with s.read() as conn:
        return int((await conn.execute(text("SELECT 41 + 1"))).scalar_one())


async def test_reads_in_steady_use_send_only_their_statements(store: Store, wire: PgWire) -> None:
    assert await read_one(store) == 42  # prepares the statement
    wire.clear()
    for _ in range(5):
        assert await read_one(store) == 42
    # One round trip each. pool_pre_ping (BEGIN, ";", ROLLBACK at each checkout) and a
    # transaction per read (BEGIN, ROLLBACK) made it six.
    assert wire.seen() == ["sync"] * 5


async def test_a_write_transaction_still_begins_and_commits(store: Store, wire: PgWire) -> None:
    async with store.tx() as conn:
        await conn.execute(text("CREATE TABLE kept (n int)"))
    wire.clear()
    async with store.tx() as conn:
        await conn.execute(text("INSERT INTO kept VALUES (7)"))
    seen = wire.seen()
    assert seen[0] == "BEGIN;" and seen[-1] == "COMMIT;" and set(seen[1:-1]) == {"sync"}
    async with store.read() as conn:
        assert (await conn.execute(text("SELECT n FROM kept"))).scalar_one() == 7


async def test_a_connection_the_server_ended_is_replaced_for_free(store: Store) -> None:
    import asyncpg

    async with store.read() as conn:
        pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
    await asyncio.sleep(0.2)  # the event loop reads the end of the socket
    async with store.read() as conn:  # no error: the dead connection is not lent
        assert (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one() != pid


async def test_a_connection_idle_long_enough_is_pinged_first(fresh_pg: str, wire: PgWire) -> None:
    engine = create_async_engine(through(fresh_pg, wire), pool_size=1)
    liveness.install(engine, idle_ping_s=0.1)
    s = Store(engine)
    try:
        assert await read_one(s) == 42
        wire.clear()
        assert await read_one(s) == 42  # at once: no ping
        assert wire.seen() == ["sync"]
        await asyncio.sleep(0.2)
        wire.clear()
        assert await read_one(s) == 42
        # SQLAlchemy's ping for asyncpg: ";" in a transaction of its own (pgbouncer).
        seen = wire.seen()
        assert seen[0].startswith("BEGIN") and seen[-2] == "ROLLBACK;" and seen[-1] == "sync"
    finally:
        await s.close()


# A new turn's round trips on PostgreSQL, each one a simple query or a sync, as this
# code sends them (the list prints when the test fails). A change that adds one shows
# here. 8: one point read (the device's live answers and its balance: the turn's first
# look, vedika.chat.preflight); BEGIN, the device's lock, its live answers again, the
# charge with its ledger entry, the conversation with the question and the answer
# (vedika.store.dialect.insert_rows), COMMIT; the ending, one statement. It was 22,
# with a ping at each checkout, a transaction around the ending, and the day's row
# opened apart from its charge; 12 with the first look as two point reads; 11 with the
# charge's entry and each new row apart.
TURN_ROUND_TRIPS = 8


async def test_a_new_turn_stays_within_its_round_trips(
    fresh_pg: str, wire: PgWire, tmp_path: Path, upstream: Any, models_file: Path
) -> None:
    quiet = {  # nothing on a timer during the count: no flush, no reaper round
        "VEDIKA_FLUSH_SECONDS": "60",
        "VEDIKA_REAPER_INTERVAL": "60",
        "VEDIKA_HEARTBEAT_STALE_SECONDS": "600",
        "VEDIKA_MAX_CONCURRENT_ANSWERS": "4",  # the default: the per-device lock and count
    }
    with serving(tmp_path, upstream, models_file, db=through(fresh_pg, wire), **quiet) as srv:
        async with Api(srv.url) as api:
            turn = {"message": "Say yes.", "model_id": "fake-short"}
            for _ in range(2):  # the statements prepared, the pools filled
                r = await api.http.post("/ai/chat", json=turn)
                assert r.status_code == 200, r.text
            await asyncio.sleep(0.3)
            wire.clear()
            r = await api.http.post("/ai/chat", json=turn)
            assert r.status_code == 200 and r.json()["response"] == "Yes.", r.text
            await asyncio.sleep(0.3)  # the answer's ending is stored after the reply
            seen = wire.seen()
    assert "ROLLBACK;" not in seen, seen
    begins = [q for q in seen if q.startswith("BEGIN")]
    assert len(begins) == seen.count("COMMIT;") == 1, seen  # the accept; the ending: one statement
    assert len(seen) <= TURN_ROUND_TRIPS, seen


async def test_an_instance_keeps_to_its_connections(
    fresh_pg: str, tmp_path: Path, upstream: Any, models_file: Path
) -> None:
    """VEDIKA_DB_POOL_SIZE and VEDIKA_DB_MAX_OVERFLOW bound what one instance opens (and
    the point reads' own 4): 16 turns at once on 2 connections wait their turn, and all
    are answered."""
    import asyncpg

    from vedika.store.pointread import PG_READERS

    name = fresh_pg.rsplit("/", 1)[1]
    tight = {"VEDIKA_DB_POOL_SIZE": "2", "VEDIKA_DB_MAX_OVERFLOW": "0"}
    admin = await asyncpg.connect(PG_ADMIN)
    peak = 0
    try:
        with serving(tmp_path, upstream, models_file, db=fresh_pg, **tight) as srv:
            async with Api(srv.url) as api:
                turn = {"message": "Say yes.", "model_id": "fake-short"}

                async def ask() -> int:
                    return (await api.http.post("/ai/chat", json=turn)).status_code

                asking = asyncio.gather(*(ask() for _ in range(16)))
                while not asking.done():
                    count = "SELECT count(*) FROM pg_stat_activity WHERE datname = $1"
                    peak = max(peak, await admin.fetchval(count, name))
                    await asyncio.sleep(0.01)
                assert await asking == [200] * 16
    finally:
        await admin.close()
    assert 1 <= peak <= 2 + PG_READERS


async def test_url_options_reach_every_connection(fresh_pg: str) -> None:
    """The URL's query is asyncpg's options (`ssl`) and SQLAlchemy's adapter's
    (`prepared_statement_cache_size`): the point reads connect as the engine does, each
    option where it belongs (as a DSN, asyncpg took `ssl` for a server setting)."""
    from vedika.credits import ledger

    await asyncio.to_thread(migrate, fresh_pg)
    s = Store(make_engine(fresh_pg + "?ssl=disable&prepared_statement_cache_size=50"))
    try:
        assert (await ledger.balance(s, device_id="dev-a", daily=20)).remaining == 20
        assert await read_one(s) == 42
    finally:
        await s.close()


@pytest.fixture
async def limited_role(fresh_pg: str) -> AsyncIterator[Callable[[int], Awaitable[str]]]:
    """`limit(n)`: the URL of `fresh_pg` as a role PostgreSQL lets open `n` connections
    at most (refusing more with SQLSTATE 53300, as at `max_connections`, which the test
    cannot lower on the shared server), granted every table there is by then. Roles are
    the server's: dropped after, with their grants."""
    import asyncpg

    role = f"vk_limited_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(fresh_pg.replace("postgresql+asyncpg", "postgresql", 1))

    async def limit(n: int) -> str:
        await admin.execute(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT {n}")
        for kind in ("TABLES", "SEQUENCES"):
            await admin.execute(f"GRANT ALL ON ALL {kind} IN SCHEMA public TO {role}")
        return fresh_pg.replace("postgres@", f"{role}@", 1)

    try:
        yield limit
    finally:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", role
        )
        if await admin.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
            await admin.execute(f"DROP OWNED BY {role}")  # its grants, in this database
            await admin.execute(f"DROP ROLE {role}")
        await admin.close()


async def test_out_of_slots_the_pool_waits_for_its_own(limited_role) -> None:
    """PostgreSQL with no slot left for a new connection: a request waits for one of
    the connections the instance holds (vedika.store.slots) instead of failing (CI: a
    turn answered database_unavailable while others held connections)."""
    engine = make_engine(await limited_role(2), pool_size=1, max_overflow=6)
    try:

        async def hold() -> int:
            async with engine.connect() as conn:
                pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
                await conn.execute(text("SELECT pg_sleep(0.05)"))
                return int(pid)

        pids = await asyncio.gather(*(hold() for _ in range(8)))
        assert len(set(pids)) <= 2  # the server's limit held; all 8 answered on those
    finally:
        await engine.dispose()


async def test_out_of_slots_with_nothing_to_wait_for_it_fails_at_once(limited_role) -> None:
    engine = make_engine(await limited_role(0), pool_size=1, max_overflow=2)
    try:
        with pytest.raises(DBAPIError, match="too many connections"):
            async with asyncio.timeout(10):
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
    finally:
        await engine.dispose()


async def test_out_of_slots_point_reads_wait_for_their_own(limited_role) -> None:
    import asyncpg

    url = (await limited_role(2)).replace("postgresql+asyncpg", "postgresql", 1)
    readers = Readers(lambda: asyncpg.connect(url), 4)
    try:
        rows = await asyncio.gather(
            *(readers.fetch("SELECT pg_backend_pid(), pg_sleep(0.05)", []) for _ in range(8))
        )
        assert len({r[0][0] for r in rows}) <= 2
    finally:
        await readers.close()
