"""Whether a pooled PostgreSQL connection is fit to lend, told without a round trip
where it can be.

SQLAlchemy's `pool_pre_ping` pinged every connection at every checkout. With asyncpg
that ping is three round trips (BEGIN, an empty query, ROLLBACK: the log of one turn
showed them before each of its transactions), so a turn paid six round trips for two
checkouts. Instead:

- A connection the server ended (a restart, `pg_terminate_backend`, an idle timeout)
  is known to asyncpg as closed as soon as the event loop reads the end of its socket,
  which it does while the connection waits in the pool: it is refused for free, and
  the pool opens a new one.
- A connection that waited in the pool for `IDLE_PING_S` or longer is pinged as
  before: a network path that dropped silently (a firewall forgetting an idle flow)
  shows only when the connection is used.

A connection in steady use is never pinged. A server that dies between two uses of a
connection a few seconds apart fails the statement that finds it (503, "the database
is unavailable"), and SQLAlchemy then drops every pooled connection of that server.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine

IDLE_PING_S = 5.0
_IDLE_SINCE = "vedika_idle_since"


def install(engine: AsyncEngine, idle_ping_s: float = IDLE_PING_S) -> None:
    """Check each checkout of `engine`'s (asyncpg) pool as the module says."""
    sync = engine.sync_engine
    dialect = sync.dialect

    @event.listens_for(sync, "checkin")
    def _checked_in(dbapi_conn: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(sync, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        if dbapi_conn._connection.is_closed():
            raise DisconnectionError("the server closed this connection")
        since = record.info.get(_IDLE_SINCE)
        if since is None or time.monotonic() - since < idle_ping_s:
            return  # new, or in use moments ago
        try:
            dialect.do_ping(dbapi_conn)
        except Exception as exc:
            raise DisconnectionError(f"the connection failed its ping: {exc}") from exc
