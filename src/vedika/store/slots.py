"""When PostgreSQL has no connection slot left, wait for one of our own.

An instance opens up to VEDIKA_DB_POOL_SIZE + VEDIKA_DB_MAX_OVERFLOW connections (and
the point reads' few), and docs/deployment.md tells operators to keep the sum over
instances under the server's `max_connections`. A peak on every instance at once,
another client of the same server, or a role's or database's CONNECTION LIMIT can
still reach the server's limit first. The server then refuses a new connection
(SQLSTATE 53300), and SQLAlchemy's pool fails the request that wanted it, although
the instance holds other connections that come back within milliseconds (the likely
cause of a turn of 200 answered `database_unavailable` in CI).

So a refusal for want of slots is treated like a full pool: the request waits for a
connection this instance already has, up to the pool's timeout. With none open there
is nothing to wait for, and the refusal stands (a 503, as before). Not yet done: the
point reads' own connections (vedika.store.pg_readers), holding none while this pool
holds every slot, still refuse; they should fall back to this pool.
"""

from __future__ import annotations

import time

import structlog
from sqlalchemy import exc
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry
from sqlalchemy.util import queue as sqla_queue

log = structlog.get_logger(__name__)

TOO_MANY_CONNECTIONS = "53300"  # PostgreSQL's SQLSTATE, whichever limit was reached
LOG_EVERY_S = 10.0  # at a peak every request may wait: one warning in this long


def refused_for_slots(error: BaseException) -> bool:
    """Whether `error` (or what it wraps: SQLAlchemy's adapter wraps asyncpg's) is
    the server refusing a connection because its slots are taken."""
    seen: BaseException | None = error
    while seen is not None:
        if getattr(seen, "sqlstate", None) == TOO_MANY_CONNECTIONS:
            return True
        seen = seen.__cause__
    return False


class WaitingPool(AsyncAdaptedQueuePool):
    """SQLAlchemy's pool for asyncio, but a connection the server refused for want of
    slots is waited for among the pool's own."""

    _logged_at = -LOG_EVERY_S

    def _do_get(self) -> ConnectionPoolEntry:
        try:
            return super()._do_get()
        except Exception as error:
            # checkedout(): ours that will come back (the refused one is not counted).
            if not refused_for_slots(error) or self.checkedout() == 0:
                raise
            now = time.monotonic()
            if now - self._logged_at >= LOG_EVERY_S:
                self._logged_at = now
                log.warning("database.no_slots", waiting_for=self.checkedout())
        try:
            return self._pool.get(True, self._timeout)
        except sqla_queue.Empty:
            raise exc.TimeoutError(
                f"PostgreSQL has no connection slot left and none of this instance's "
                f"{self.checkedout()} came back within {self._timeout:.0f} s"
            ) from None
