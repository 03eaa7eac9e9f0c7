"""CPU per PostgreSQL write, in process: what a statement costs Vedika by each path.

One process, one connection at a time, the same UPDATE of one row 2,000 times per
round, the paths alternated for `--rounds` rounds (CPU of this process only: the
database server's work is not counted):

- `sqlalchemy`: one statement in autocommit through SQLAlchemy's engine (pool
  checkout, execution, return), as `Store.write_one` ran an answer's ending before;
- `write_one`: `Store.write_one` as it is (the point connections, store.direct's plan);
- `tx1` / `tx3`: `Store.run_tx` with one / three statements (BEGIN ... COMMIT, the
  statements through store.direct): the fixed cost of a transaction, and a statement's.

    python -m bench.pg_writes [--rounds 3] [-n 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from sqlalchemy import Connection, bindparam
from tests.support.rows import first_conversation, live_answer

from bench import procs
from vedika.store import direct
from vedika.store.engine import Store, make_engine, migrate
from vedika.store.tables import messages

NOW = datetime.now(UTC)
UPDATE = (
    messages.update()
    .where(messages.c.id == bindparam("b_id"))
    .values(content=bindparam("b_c"), updated_at=bindparam("b_now"))
)


async def _seed(store: Store) -> None:
    def write(conn: Connection) -> None:
        first_conversation(conn, NOW)
        conn.execute(messages.insert(), live_answer("m1"))  # the answer an ending writes

    await store.run_tx(write)


async def measure(url: str, rounds: int, n: int) -> dict[str, list[float]]:
    store = Store(make_engine(url))
    await _seed(store)

    def params(i: int) -> dict[str, object]:
        return {"b_id": "m1", "b_c": str(i), "b_now": NOW}

    async def sqlalchemy(i: int) -> int:
        async with store._autocommit.connect() as conn:
            return (await conn.execute(UPDATE, params(i))).rowcount

    async def write_one(i: int) -> int:
        return await store.write_one(UPDATE, params(i))

    def tx(count: int) -> Callable[[int], Awaitable[int]]:
        async def run(i: int) -> int:
            def write(conn: Connection) -> int:
                for _ in range(count):
                    direct.run(conn, UPDATE, params(i))
                return 1

            return await store.run_tx(write)

        return run

    paths = {"sqlalchemy": sqlalchemy, "write_one": write_one, "tx1": tx(1), "tx3": tx(3)}
    out: dict[str, list[float]] = {name: [] for name in paths}
    try:
        for _ in range(rounds):
            for name, call in paths.items():
                for i in range(n // 10):  # warm: connections open, statements prepared
                    await call(i)
                start = time.process_time()
                for i in range(n):
                    assert await call(i) == 1
                out[name].append((time.process_time() - start) / n * 1e6)
    finally:
        await store.close()
    return out


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("-n", type=int, default=2000)
    args = parser.parse_args()
    with procs.scratch_postgres("vedika_bench_pg_writes") as url:
        migrate(url)
        run = asyncio.run
        with contextlib.suppress(ImportError):
            import uvloop  # the server's loop

            run = uvloop.run
        figures = run(measure(url, args.rounds, args.n))
    for name, values in figures.items():
        shown = " / ".join(f"{v:.0f}" for v in values)
        print(f"{name:>10}: {shown} us CPU per call")


if __name__ == "__main__":
    cli()
