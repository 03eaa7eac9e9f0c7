"""The model call of a new plain Search turn is sent while the turn is being stored
(vedika.modes.early), and nothing reaches the client before the turn is committed."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.fakes.upstream import FakeUpstream, fake_reply
from tests.support.client import Api, Socket, assert_invariants, text_of
from tests.support.server import serving, sqlite_url


@contextmanager
def write_locked(db: Path) -> Iterator[None]:
    """Hold SQLite's write lock: the server's turn transaction waits (busy_timeout)."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield
        conn.execute("ROLLBACK")
    finally:
        conn.close()


async def asked(upstream: FakeUpstream, question: str, seconds: float) -> bool:
    """Whether the upstream receives a chat request with this question in time."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        bodies = await asyncio.to_thread(upstream.requests)
        if any(question in str(b.get("messages")) for b in bodies):
            return True
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("early", [True, False])
async def test_the_model_is_asked_while_the_turn_is_stored(
    tmp_path, upstream, models_file, early: bool
) -> None:
    question = f"early start {early} {tmp_path.name}"
    db = tmp_path / "v.db"
    early_start = str(early).lower()
    with serving(
        tmp_path, upstream, models_file, db=sqlite_url(db), VEDIKA_EARLY_START=early_start
    ) as srv:
        async with Api(srv.url) as api, Socket(srv.ws_url) as ws:
            with write_locked(db):
                await ws.send_chat(api, question, model_id="fake-steady")
                # The turn cannot be stored yet; the model call goes out only when early.
                assert await asked(upstream, question, 1.5 if early else 1.0) is early
                with pytest.raises(TimeoutError):
                    await ws.recv(timeout=0.3)  # nothing before the commit
            events = await ws.until_terminal()
    assert events[0]["type"] == "conversation_started"
    done = assert_invariants(events)
    assert done["type"] == "stream_complete"
    assert text_of(events) == done["full_response"] == "".join(fake_reply("fake-steady", question))


async def test_a_turn_refused_for_its_coins_sends_nothing_upstream(
    tmp_path, upstream, models_file
) -> None:
    """No coins: the balance is read before the early call may go out, so the refused
    turn's prompt never reaches the model (issue 12, finding 4; before, the call went
    out and was closed), and nothing is stored or streamed."""
    question = f"refused early {tmp_path.name}"
    with serving(tmp_path, upstream, models_file, VEDIKA_DAILY_CREDITS="0") as srv:
        async with Api(srv.url) as api, Socket(srv.ws_url) as ws:
            (event,) = await ws.ask(api, question, model_id="fake-hang")
            assert event["type"] == "credits_exhausted"
            assert not await asked(upstream, question, 1.5)
            assert (await api.http.get("/ai/conversations")).json()["conversations"] == []
