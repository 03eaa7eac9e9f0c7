"""An answer's ending tried again after the database failed (Generations._settle): a
try whose commit went through but whose reply was lost is the ending stored, not
another instance's; an ending settled elsewhere meanwhile stays that one."""

from __future__ import annotations

import asyncio
import types
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.rows import streaming_answer
from tests.support.server import sqlite_url
from vedika.chat.finish import Ending, Written, settle
from vedika.chat.generation import INTERRUPTED, Generations
from vedika.protocol import MessageStatus
from vedika.scale.hub import MemoryHub
from vedika.settings import Settings
from vedika.store import conversations as data
from vedika.store.engine import Store, make_engine, migrate


class FailingOnce(Store):
    """A real store whose first write transaction fails with a connection error, after
    `before` ran and, if `commit_first`, after the transaction itself committed (the
    reply lost on the way back)."""

    def __init__(self, url: str, *, commit_first: bool, before: Callable[[], Any]) -> None:
        super().__init__(make_engine(url))
        self.commit_first = commit_first
        self.before = before
        self.failed = False

    async def run_tx(self, fn):  # type: ignore[no-untyped-def]
        if self.failed:
            return await super().run_tx(fn)
        self.failed = True
        await self.before()
        if self.commit_first:
            await super().run_tx(fn)
        raise ConnectionResetError(104, "Connection reset by peer")


async def _streaming(store: Store) -> types.SimpleNamespace:
    cid, mid = await streaming_answer(store)
    turn = types.SimpleNamespace(message_id=mid, conversation_id=cid, device_id="dev")
    return types.SimpleNamespace(turn=turn, delivered=True)  # what _settle reads of one


@pytest.fixture
async def url(tmp_path: Path) -> AsyncIterator[str]:
    db = sqlite_url(tmp_path / "v.db")
    await asyncio.to_thread(migrate, db)  # alembic runs its own event loop
    yield db


async def _stored(store: Store, gen: types.SimpleNamespace) -> data.StoredMessage:
    async with store.read() as conn:
        found = await data.find_message(conn, message_id=gen.turn.message_id, device_id="dev")
    assert found is not None
    return found


async def _ending_after_a_failure(
    url: str, *, commit_first: bool, elsewhere: Ending | None
) -> tuple[int | None, data.StoredMessage]:
    """A streaming answer whose ending's first try fails with a connection error (after
    committing, if `commit_first`), another instance having settled it with
    `elsewhere` just before: what `_settle` returns, and what is stored."""
    plain = Store(make_engine(url))
    gen = await _streaming(plain)

    async def before() -> None:  # another instance's reaper, while this one is cut off
        if elsewhere is not None:
            await settle(
                plain,
                message_id=gen.turn.message_id,
                conversation_id=gen.turn.conversation_id,
                device_id="dev",
                ending=elsewhere,
                delivered=True,
                written=Written("Ye", 1, 0, 1),
            )

    store = FailingOnce(url, commit_first=commit_first, before=before)
    gens = Generations(
        store=store,
        hub=MemoryHub(retention=60),
        settings=Settings(),
        instance_id="i",
        modes=None,  # type: ignore[arg-type]
    )
    try:
        refunded = await gens._settle(gen, Ending.complete("stop"), Written("Yes.", 2, 1, 2))  # type: ignore[arg-type]
        assert store.failed
        return refunded, await _stored(plain, gen)
    finally:
        await store.close()
        await plain.close()


async def test_a_commit_whose_reply_was_lost_is_the_ending(url: str) -> None:
    refunded, stored = await _ending_after_a_failure(url, commit_first=True, elsewhere=None)
    assert refunded == 0  # stored, as the client will be told: complete
    assert (stored.status, stored.content) == (MessageStatus.COMPLETE, "Yes.")


async def test_an_ending_settled_elsewhere_meanwhile_stays_that_one(url: str) -> None:
    reaped = Ending.failed(INTERRUPTED, MessageStatus.INTERRUPTED)
    refunded, stored = await _ending_after_a_failure(url, commit_first=False, elsewhere=reaped)
    assert refunded is None  # the generation takes the reaper's ending (_superseded)
    assert (stored.status, stored.content) == (MessageStatus.INTERRUPTED, "Ye")
