"""Edit and branch (issue 18): a conversation is a tree; the API shows the active path.

Real `vedika serve` on SQLite and PostgreSQL (the `server` fixture), the fake upstream
recording what the model was sent; the migration's linear backfill on a database made
at the revision before it."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import DATABASES, drop_pg_database, fresh_pg_database
from tests.fakes.upstream import FakeUpstream, fake_reply
from tests.support.client import Api, Socket, text_of
from tests.support.server import serving, sqlite_url
from vedika.store import tables
from vedika.store.engine import MIGRATIONS

FAST = {"model_id": "fake-fast", "sources": []}


async def ask(api: Api, message: str, **fields: Any) -> dict[str, Any]:
    """One blocking turn; its /ai/chat body."""
    r = await api.http.post("/ai/chat", json={"message": message, **FAST, **fields})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def sent_for(upstream: FakeUpstream, question: str) -> list[dict[str, Any]]:
    """The messages of the newest model call whose question was `question`."""
    for body in reversed(upstream.requests()):
        msgs = body.get("messages") or []
        if msgs and msgs[-1].get("role") == "user" and msgs[-1].get("content") == question:
            return [m for m in msgs if m["role"] != "system"]
    raise AssertionError(f"no model call for {question!r}")


def path_of(conv: dict[str, Any]) -> list[str]:
    return [m["message_id"] for m in conv["messages"]]


async def ids_of(api: Api, conversation_id: str, message_id: str) -> tuple[str, str]:
    """(question id, answer id) of the turn whose answer is `message_id`."""
    conv = await api.conversation(conversation_id)
    answer = next(m for m in conv["messages"] if m["message_id"] == message_id)
    return answer["parent_id"], message_id


async def test_edit_regenerate_switch_and_continue(server, api: Api, upstream) -> None:
    first = await ask(api, "alpha one")
    cid = first["conversation_id"]
    second = await ask(api, "beta two", conversation_id=cid)
    q1, a1 = await ids_of(api, cid, first["message_id"])
    q2, a2 = await ids_of(api, cid, second["message_id"])
    reply1 = "".join(fake_reply("fake-fast", "alpha one"))

    # Edit the second question: a sibling of it, with a new answer.
    edited = await ask(api, "beta edited", conversation_id=cid, edit_of=q2)
    q2b, a2b = await ids_of(api, cid, edited["message_id"])
    conv = await api.conversation(cid)
    assert path_of(conv) == [q1, a1, q2b, a2b]
    assert conv["total"] == 4
    q = conv["messages"][2]
    assert (q["content"], q["parent_id"]) == ("beta edited", a1)
    assert (q["sibling_index"], q["sibling_count"], q["sibling_ids"]) == (1, 2, [q2, q2b])
    assert conv["messages"][0]["parent_id"] is None
    assert conv["messages"][0]["sibling_count"] == 1
    # The model saw the path to the edited question, not the question it replaces.
    assert sent_for(upstream, "beta edited") == [
        {"role": "user", "content": "alpha one"},
        {"role": "assistant", "content": reply1},
        {"role": "user", "content": "beta edited"},
    ]

    # Regenerate that answer twice: three answers, siblings, to one question.
    upstream.reset()
    regen = await ask(api, "beta edited", conversation_id=cid, regenerate=a2b)
    regen2 = await ask(
        api,
        "ignored: the stored question is answered",
        conversation_id=cid,
        regenerate=regen["message_id"],
    )
    conv = await api.conversation(cid)
    assert path_of(conv) == [q1, a1, q2b, regen2["message_id"]]
    last = conv["messages"][-1]
    assert last["parent_id"] == q2b
    assert last["sibling_ids"] == [a2b, regen["message_id"], regen2["message_id"]]
    assert (last["sibling_index"], last["sibling_count"]) == (2, 3)
    assert regen2["response"] == "".join(fake_reply("fake-fast", "beta edited"))
    assert len(upstream.requests()) == 2
    assert sent_for(upstream, "beta edited")[:2] == [
        {"role": "user", "content": "alpha one"},
        {"role": "assistant", "content": reply1},
    ]
    listed = (await api.http.get("/ai/conversations")).json()["conversations"]
    assert next(c for c in listed if c["conversation_id"] == cid)["message_count"] == 8

    # Switch to the first branch: the path through the original second question.
    r = await api.http.post(f"/ai/conversations/{cid}/active", json={"message_id": q2})
    assert r.status_code == 200, r.text
    assert path_of(r.json()) == [q1, a1, q2, a2]
    assert path_of(await api.conversation(cid)) == [q1, a1, q2, a2]  # stored

    # A turn without branch fields continues from the branch shown.
    third = await ask(api, "gamma three", conversation_id=cid)
    conv = await api.conversation(cid)
    assert path_of(conv)[:4] == [q1, a1, q2, a2] and len(conv["messages"]) == 6
    assert [m["content"] for m in sent_for(upstream, "gamma three")] == [
        "alpha one",
        reply1,
        "beta two",
        "".join(fake_reply("fake-fast", "beta two")),
        "gamma three",
    ]

    # Switching to a message shows its newest deepest descendant.
    r = await api.http.post(f"/ai/conversations/{cid}/active", json={"message_id": a1})
    assert path_of(r.json()) == [q1, a1, q2b, regen2["message_id"]]
    # parent_id continues from a named answer, whichever branch is shown.
    fourth = await ask(api, "delta four", conversation_id=cid, parent_id=third["message_id"])
    conv = await api.conversation(cid)
    assert path_of(conv)[-1] == fourth["message_id"]
    assert path_of(conv)[:4] == [q1, a1, q2, a2] and len(conv["messages"]) == 8
    assert "gamma three" in [m["content"] for m in sent_for(upstream, "delta four")]


async def test_each_turn_stores_its_answer_as_the_active_leaf(server, api: Api) -> None:
    """Written by the turn's own statements (the conversation's insert, then its touch),
    not left NULL for `tree.lock` to rebuild from the chain on the next turn."""

    async def leaf(cid: str) -> str | None:
        engine = create_async_engine(server.env["VEDIKA_DATABASE_URL"])
        try:
            async with engine.connect() as conn:
                query = sa.text("SELECT active_leaf_id FROM conversations WHERE id = :id")
                return (await conn.execute(query, {"id": cid})).scalar_one()  # type: ignore[no-any-return]
        finally:
            await engine.dispose()

    first = await ask(api, "leaf one")
    cid = first["conversation_id"]
    assert await leaf(cid) == first["message_id"]
    second = await ask(api, "leaf two", conversation_id=cid)
    assert await leaf(cid) == second["message_id"]
    q2 = (await ids_of(api, cid, second["message_id"]))[0]
    edited = await ask(api, "leaf two, edited", conversation_id=cid, edit_of=q2)
    assert await leaf(cid) == edited["message_id"]


async def test_a_client_without_branch_fields_sees_a_linear_conversation(server, api: Api) -> None:
    events = await api.ask("one", **FAST)
    cid = events[0]["conversation_id"]
    for text in ("two", "three"):
        done = await api.ask(text, conversation_id=cid, **FAST)
        assert done[-1]["type"] == "stream_complete"
    conv = await api.conversation(cid)
    assert [m["content"] for m in conv["messages"] if m["role"] == "user"] == [
        "one",
        "two",
        "three",
    ]
    parents = [m["parent_id"] for m in conv["messages"]]
    assert parents == [None, *path_of(conv)[:-1]]
    assert {m["sibling_count"] for m in conv["messages"]} == {1}


async def test_refused_branch_requests(server, api: Api, other: Api) -> None:
    mine = await ask(api, "mine")
    cid, answer = mine["conversation_id"], mine["message_id"]
    question, _ = await ids_of(api, cid, answer)
    theirs = await ask(other, "theirs")
    before = (await api.balance())["vedika_coins_remaining"]

    async def refused(status: int, code: str, **fields: Any) -> None:
        r = await api.http.post("/ai/chat/start", json={"message": "x", **FAST, **fields})
        assert (r.status_code, r.json()["error"]) == (status, code), r.text

    await refused(404, "message_not_found", conversation_id=cid, parent_id=theirs["message_id"])
    await refused(404, "message_not_found", conversation_id=cid, regenerate=str(uuid.uuid4()))
    await refused(
        404,
        "conversation_not_found",
        conversation_id=theirs["conversation_id"],
        parent_id=theirs["message_id"],
    )
    await refused(400, "not_a_question", conversation_id=cid, edit_of=answer)
    await refused(400, "not_an_answer", conversation_id=cid, regenerate=question)
    await refused(400, "not_an_answer", conversation_id=cid, parent_id=question)
    await refused(
        400, "conflicting_branch_fields", conversation_id=cid, edit_of=question, regenerate=answer
    )
    await refused(400, "branch_needs_conversation", parent_id=answer)
    # Over the socket too.
    async with Socket(api.ws_url) as ws:
        events = await ws.ask(api, "x", conversation_id=cid, edit_of=theirs["message_id"], **FAST)
        assert (events[-1]["type"], events[-1]["code"]) == ("stream_error", "message_not_found")
    assert (await api.balance())["vedika_coins_remaining"] == before  # nothing charged
    assert len((await api.conversation(cid))["messages"]) == 2

    switch = f"/ai/conversations/{cid}/active"
    r = await api.http.post(switch, json={"message_id": theirs["message_id"]})
    assert (r.status_code, r.json()["error"]) == (404, "message_not_found")
    r = await other.http.post(switch, json={"message_id": answer})
    assert (r.status_code, r.json()["error"]) == (404, "conversation_not_found")
    r = await api.http.post(switch, json={})
    assert r.status_code == 400


async def test_idempotent_retry_on_a_branch_is_one_turn_and_one_charge(server, api: Api) -> None:
    first = await ask(api, "retry base")
    cid = first["conversation_id"]
    question, answer = await ids_of(api, cid, first["message_id"])
    key = str(uuid.uuid4())
    payload = {
        "message": "retry edited",
        "conversation_id": cid,
        "edit_of": question,
        "client_message_id": key,
        **FAST,
    }
    a = await api.http.post("/ai/chat/start", json=payload)
    b = await api.http.post("/ai/chat/start", json=payload)
    assert (a.status_code, b.status_code) == (201, 200)
    assert a.json()["message_id"] == b.json()["message_id"]
    await api.wait_status(cid, a.json()["message_id"])
    conv = await api.conversation(cid)
    assert len(conv["messages"]) == 2 and conv["messages"][0]["sibling_count"] == 2
    txns = (await api.http.get("/coins/transactions")).json()["transactions"]
    assert [t["amount"] for t in txns if t["message_id"] == a.json()["message_id"]] == [-1]
    # The same key for the same text on another branch is another request.
    clash = await api.http.post(
        "/ai/chat/start", json={**payload, "edit_of": None, "regenerate": answer}
    )
    assert (clash.status_code, clash.json()["error"]) == (409, "idempotency_conflict")


async def test_resume_and_stop_on_a_branch(server, api: Api) -> None:
    first = await ask(api, "slow base")
    cid = first["conversation_id"]
    started = await api.start(
        "slow base",
        conversation_id=cid,
        regenerate=first["message_id"],
        model_id="fake-slow",
        sources=[],
    )
    mid = started["message_id"]
    async with Socket(api.ws_url) as ws:
        head = await ws.ask(api, conversation_id=cid, message_id=mid, limit=2)
        seen = text_of(head)
    async with Socket(api.ws_url) as ws:  # a reload: resume after the chunks seen
        await ws.send_chat(api, conversation_id=cid, message_id=mid, resume_from=2)
        tail = await ws.until_terminal(limit=1)
        assert tail[-1]["type"] == "content_chunk"
        r = await api.http.post("/ai/chat/stop", json={"message_id": mid})
        assert r.status_code == 200 and r.json()["stopped"] is True
        rest = await ws.until_terminal()
    assert rest[-1]["type"] == "stream_complete"
    stored = await api.wait_status(cid, mid)
    assert stored["status"] == "stopped"
    assert stored["content"] == seen + text_of(tail) + text_of(rest)
    conv = await api.conversation(cid)
    assert conv["messages"][-1]["message_id"] == mid
    assert conv["messages"][-1]["sibling_ids"] == [first["message_id"], mid]
    txns = (await api.http.get("/coins/transactions")).json()["transactions"]
    assert sum(t["amount"] for t in txns if t["message_id"] == mid) == -1  # charged once


async def test_concurrent_turns_in_one_conversation_stay_one_chain(server, api: Api) -> None:
    """Two tabs sending at once: each turn continues from the leaf the one before it
    wrote (the conversation row is locked for the turn on PostgreSQL), so no two
    questions become siblings by accident and the path shows every turn."""
    first = await ask(api, "chain start")
    cid = first["conversation_id"]
    started = await asyncio.gather(
        *(api.start(f"tab {n}", conversation_id=cid, **FAST) for n in range(3))
    )
    for body in started:  # attach to each answer until it ends
        done = await api.ask(conversation_id=cid, message_id=body["message_id"])
        assert done[-1]["type"] == "stream_complete"
    conv = await api.conversation(cid)
    assert len(conv["messages"]) == 8
    assert {m["sibling_count"] for m in conv["messages"]} == {1}
    assert [m["parent_id"] for m in conv["messages"]] == [None, *path_of(conv)[:-1]]
    assert {b["message_id"] for b in started} <= set(path_of(conv))


# ---------------------------------------------------------------- the migration


def _alembic(url: str, revision: str, *, down: bool = False) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    (command.downgrade if down else command.upgrade)(cfg, revision)


def _before_branches() -> str:
    """The revision 0009 follows (whatever the chain is when it is merged)."""
    text = (MIGRATIONS / "versions" / "0009_branches.py").read_text()
    return text.split('down_revision = "', 1)[1].split('"', 1)[0]


@pytest.fixture(params=DATABASES)
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "old.db")
        return
    url = fresh_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(url)


async def test_the_migration_backfills_a_linear_chain(
    empty_db: str, tmp_path: Path, upstream, models_file
) -> None:
    url = empty_db
    await asyncio.to_thread(_alembic, url, _before_branches())
    engine = create_async_engine(url)
    t0 = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    ids = [str(uuid.UUID(int=i)) for i in range(1, 5)]
    async with engine.begin() as conn:
        # Only the columns of the schema before 0009 are written.
        for cid in ("c-linear", "c-empty"):
            await conn.execute(
                tables.conversations.insert().values(
                    id=cid,
                    device_id="old-device",
                    title="t",
                    model="fake-fast",
                    created_at=t0,
                    updated_at=t0,
                    message_count=4,
                    total_tokens=0,
                )
            )
        for n in (3, 0, 2, 1):  # inserted out of order: the chain follows created_at
            at = t0 + timedelta(seconds=n)
            await conn.execute(
                tables.messages.insert().values(
                    id=ids[n],
                    conversation_id="c-linear",
                    role="user" if n % 2 == 0 else "assistant",
                    content=f"m{n}",
                    status="complete",
                    input_tokens=0,
                    output_tokens=0,
                    chunk_count=0,
                    coins_charged=0,
                    created_at=at,
                    updated_at=at,
                )
            )
    await asyncio.to_thread(_alembic, url, "head")
    async with engine.connect() as conn:
        rows = (
            await conn.execute(sa.text("SELECT id, parent_id FROM messages ORDER BY created_at"))
        ).all()
        leaves = dict(
            (await conn.execute(sa.text("SELECT id, active_leaf_id FROM conversations"))).all()
        )
    assert [(r[0], r[1]) for r in rows] == [
        (ids[0], None),
        (ids[1], ids[0]),
        (ids[2], ids[1]),
        (ids[3], ids[2]),
    ]
    assert leaves == {"c-linear": ids[3], "c-empty": None}

    # Served: the device that owns it sees the same linear conversation, and continues it.
    with serving(tmp_path, upstream, models_file, db=url) as srv:
        async with Api(srv.url) as api:
            async with engine.begin() as conn:
                await conn.execute(
                    sa.text("UPDATE conversations SET device_id = :d"), {"d": api.device_id}
                )
            conv = await api.conversation("c-linear")
            assert path_of(conv) == ids
            assert [m["parent_id"] for m in conv["messages"]] == [None, *ids[:3]]
            more = await ask(api, "m4", conversation_id="c-linear")
            conv = await api.conversation("c-linear")
            assert path_of(conv) == [*ids, conv["messages"][4]["message_id"], more["message_id"]]
    await engine.dispose()
    await asyncio.to_thread(_alembic, url, _before_branches(), down=True)  # reversible


async def test_a_share_and_an_export_hold_the_branch_shown(server, api: Api) -> None:
    """Sharing and exporting take the active path, as the page shows it: after an edit,
    the edited question and its answer, not the version it replaced."""
    first = await ask(api, "gamma one")
    cid = first["conversation_id"]
    second = await ask(api, "delta two", conversation_id=cid)
    q2, _ = await ids_of(api, cid, second["message_id"])
    await ask(api, "delta edited", conversation_id=cid, edit_of=q2)

    r = await api.http.post(f"/ai/conversations/{cid}/share", json={})
    assert r.status_code in (200, 201), r.text
    shared = (await api.http.get(f"/shared/{r.json()['share_id']}")).json()
    questions = [m["content"] for m in shared["messages"] if m["role"] == "user"]
    assert questions == ["gamma one", "delta edited"]
    assert len(shared["messages"]) == 4

    md = await api.http.get(f"/ai/conversations/{cid}/export", params={"format": "md"})
    assert md.status_code == 200, md.text
    assert "delta edited" in md.text and "delta two" not in md.text
