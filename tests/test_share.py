"""Share links (issue 18): a read-only snapshot at /s/{id} (HTML, no JavaScript) and
/shared/{id} (JSON); owner-only; revocable; sanitised. Real `vedika serve` on SQLite and
PostgreSQL."""

from __future__ import annotations

import base64
import re
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.client import Api, text_of
from tests.support.safe_html import parse, unsafe_parts
from tests.support.server import VedikaServer
from tests.support.xss import PAYLOADS
from vedika.store.tables import shares

CSRF = {"X-Requested-With": "fetch"}
# what the shared page's own frame uses: its <meta> tags, its stylesheet
FRAME = frozenset({"meta", "link", "body"})


async def ask(api: Api, message: str, **fields: Any) -> tuple[str, str]:
    """(conversation id, the answer's text) of one finished turn."""
    events = await api.ask(message, model_id=fields.pop("model_id", "fake-fast"), **fields)
    return events[-1]["conversation_id"], text_of(events)


async def share(api: Api, conversation_id: str, **body: Any) -> httpx.Response:
    return await api.http.post(f"/ai/conversations/{conversation_id}/share", json=body)


def meta(html: str, key: str, value: str) -> str | None:
    for tag, attrs in parse(html)[0]:
        if tag == "meta" and attrs.get(key) == value:
            return attrs.get("content")
    return None


async def imported(api: Api, messages: list[dict[str, Any]], title: str = "Imported") -> str:
    doc = {"format": "vedika.conversation", "version": 1, "title": title, "messages": messages}
    r = await api.http.post("/ai/conversations/import", json=doc)
    assert r.status_code == 201, r.text
    return r.json()["conversation_id"]  # type: ignore[no-any-return]


async def test_a_link_shows_a_snapshot_until_shared_again(server: VedikaServer, api: Api) -> None:
    cid, first = await ask(api, "Where does the river Veyra start")
    r = await share(api, cid)
    assert r.status_code == 201, r.text
    link = r.json()
    assert re.fullmatch(r"[A-Za-z0-9_-]{32}", link["share_id"])
    assert link["url"] == f"{server.url}/s/{link['share_id']}"
    assert link["allow_indexing"] is False and link["message_count"] == 2
    assert (await api.http.get(f"/ai/conversations/{cid}/share")).json() == link

    page = await api.http.get(f"/s/{link['share_id']}")  # no session needed: see below
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    _, text = parse(html)
    assert "Where does the river Veyra start" in text and first in text
    assert "<script" not in html.lower()  # readable without JavaScript: there is none
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    assert meta(html, "name", "robots") == "noindex" and page.headers["x-robots-tag"] == "noindex"
    assert meta(html, "property", "og:title") == "Where does the river Veyra start"
    assert meta(html, "property", "og:type") == "article"
    assert meta(html, "property", "og:url") == link["url"]
    assert first[:40] in (meta(html, "property", "og:description") or "")

    _, later = await ask(api, "And where does it end", conversation_id=cid)
    anonymous = httpx.AsyncClient(base_url=server.url)
    async with anonymous:
        again = await anonymous.get(f"/s/{link['share_id']}")
        assert "And where does it end" not in again.text  # a snapshot: later turns wait
        snap = (await anonymous.get(f"/shared/{link['share_id']}")).json()
        assert [m["content"] for m in snap["messages"]] == [
            "Where does the river Veyra start",
            first,
        ]
        r2 = await share(api, cid, allow_indexing=True)
        assert r2.status_code == 200 and r2.json()["share_id"] == link["share_id"]
        assert r2.json()["message_count"] == 4
        updated = await anonymous.get(f"/s/{link['share_id']}")
        assert "And where does it end" in parse(updated.text)[1] and later in updated.text
        assert meta(updated.text, "name", "robots") is None
        assert "x-robots-tag" not in updated.headers


async def test_share_ids_are_unguessable(api: Api) -> None:
    ids = set()
    for n in range(4):
        cid = await imported(api, [{"role": "user", "content": f"question {n}"}])
        r = await share(api, cid)
        assert r.status_code == 201
        ids.add(r.json()["share_id"])
    assert len(ids) == 4
    for share_id in ids:
        assert len(base64.urlsafe_b64decode(share_id + "==")) * 8 >= 128
    near = sorted(ids)[0]
    near = near[:-1] + ("A" if near[-1] != "A" else "B")
    assert (await api.http.get("/s/../etc/passwd")).status_code == 404
    for guess in ("0" * 32, "x" * 33, near, "%3Cscript%3E"):
        r = await api.http.get(f"/s/{guess}")
        assert r.status_code == 404 and "no shared conversation" in r.text.lower()
        j = await api.http.get(f"/shared/{guess}")
        assert j.status_code == 404 and j.json()["error"] == "share_not_found"


async def test_only_the_owner_shares_reads_or_revokes(api: Api, other: Api) -> None:
    cid = await imported(api, [{"role": "user", "content": "mine"}])
    for method in ("POST", "GET", "DELETE"):
        r = await other.http.request(method, f"/ai/conversations/{cid}/share")
        assert r.status_code == 404 and r.json()["error"] == "conversation_not_found"
    link = (await share(api, cid)).json()
    r = await other.http.delete(f"/ai/conversations/{cid}/share")
    assert r.status_code == 404
    assert (
        await other.http.get(f"/s/{link['share_id']}")
    ).status_code == 200  # the link is the grant
    nobody = await api.http.get("/ai/conversations/not-a-conversation/share")
    assert nobody.status_code == 404


async def test_revoking_answers_410_and_a_new_share_is_a_new_link(api: Api) -> None:
    cid = await imported(api, [{"role": "user", "content": "revoke me"}])
    old = (await share(api, cid)).json()["share_id"]
    r = await api.http.delete(f"/ai/conversations/{cid}/share")
    assert r.status_code == 200 and r.json()["revoked"] is True
    gone = await api.http.get(f"/s/{old}")
    assert gone.status_code == 410 and "revoked" in gone.text
    assert "revoke me" not in gone.text
    assert (await api.http.get(f"/shared/{old}")).status_code == 410
    assert (await api.http.get(f"/ai/conversations/{cid}/share")).status_code == 404
    assert (await api.http.delete(f"/ai/conversations/{cid}/share")).status_code == 404
    new = (await share(api, cid)).json()["share_id"]
    assert new != old
    assert (await api.http.get(f"/s/{new}")).status_code == 200
    assert (await api.http.get(f"/s/{old}")).status_code == 410


async def test_a_deleted_conversation_is_no_longer_shared(
    api: Api, backend: tuple[str, Any]
) -> None:
    cid = await imported(api, [{"role": "user", "content": "delete me"}])
    link = (await share(api, cid)).json()["share_id"]
    assert (await api.http.delete(f"/ai/conversations/{cid}")).status_code == 200
    assert (await api.http.get(f"/s/{link}")).status_code == 404
    assert (await api.http.get(f"/shared/{link}")).status_code == 404
    engine = create_async_engine(backend[0])
    try:
        async with engine.connect() as conn:  # the snapshot's text went too
            assert (await conn.execute(select(shares).where(shares.c.id == link))).first() is None
    finally:
        await engine.dispose()
    engine = create_async_engine(backend[0])
    try:
        async with engine.connect() as conn:  # the snapshot's text went with it
            left = await conn.execute(select(shares.c.id).where(shares.c.id == link))
            assert left.first() is None
    finally:
        await engine.dispose()


async def test_cookie_sessions_need_the_csrf_header(server: VedikaServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as browser:
        r = await browser.post("/auth/device-session", json={})
        assert r.status_code == 201 and browser.cookies.get("vedika_session")
        doc = {
            "format": "vedika.conversation",
            "version": 1,
            "messages": [{"role": "user", "content": "hello"}],
        }
        forged = await browser.post("/ai/conversations/import", json=doc)
        assert forged.status_code == 403 and forged.json()["error"] == "csrf_refused"
        made = await browser.post("/ai/conversations/import", json=doc, headers=CSRF)
        assert made.status_code == 201
        cid = made.json()["conversation_id"]
        url = f"/ai/conversations/{cid}/share"
        assert (await browser.post(url, json={})).status_code == 403
        assert (await browser.post(url, json={}, headers=CSRF)).status_code == 201
        assert (await browser.delete(url)).status_code == 403
        assert (await browser.delete(url, headers=CSRF)).status_code == 200


async def test_shared_text_is_sanitised(api: Api) -> None:
    """Every payload of the corpus as a question, an answer, a title and a source: the
    page shows them as text and carries nothing that could run."""
    payload_text = "\n\n".join(PAYLOADS)
    citations = [
        {"index": i + 1, "title": p, "url": "https://example.org/s", "site": p, "snippet": p}
        for i, p in enumerate(PAYLOADS[:10])
    ]
    cid = await imported(
        api,
        [
            {"role": "user", "content": payload_text},
            {"role": "assistant", "content": payload_text + " [1] [2]", "citations": citations},
        ],
        title=PAYLOADS[0][:200],
    )
    link = (await share(api, cid)).json()["share_id"]
    page = await api.http.get(f"/s/{link}")
    assert page.status_code == 200
    assert unsafe_parts(page.text, allowed=FRAME) == []
    assert [t for t, _ in parse(page.text)[0]].count("body") == 1
    metas = [a for t, a in parse(page.text)[0] if t == "meta"]
    assert all("http-equiv" not in a for a in metas)
    head_links = [a for t, a in parse(page.text)[0] if t == "link"]
    assert all(a.get("rel") in ("icon", "stylesheet") for a in head_links)
    _, text = parse(page.text)
    assert "<script>window.__xss=1</script>" in text  # shown, as text
    assert "window.__xss" in (meta(page.text, "property", "og:title") or "")
    sources = [a for t, a in parse(page.text)[0] if t == "a" and a.get("href", "").startswith("#")]
    assert {a["href"] for a in sources} >= {"#m1-source-1", "#m1-source-2"}


@pytest.mark.parametrize("body", [{"allow_indexing": "yes please"}, {"allow_indexing": [1]}])
async def test_bad_share_bodies_are_refused(api: Api, body: dict[str, Any]) -> None:
    cid = await imported(api, [{"role": "user", "content": "body"}])
    r = await share(api, cid, **body)
    assert r.status_code in (400, 422) and r.json()["error"]


async def test_revoking_on_one_instance_ends_the_link_on_another(
    server: VedikaServer,
    api: Api,
    backend: tuple[str, Any],
    upstream: Any,
    models_file: Any,
    tmp_path: Any,
) -> None:
    """No instance keeps a copy: a second server on the same database answers 410 at the
    first request after the first one revoked the link."""
    from tests.support.server import serving

    cid = await imported(api, [{"role": "user", "content": "two instances"}])
    link = (await share(api, cid)).json()["share_id"]
    with serving(tmp_path, upstream, models_file, db=backend[0]) as second:
        async with httpx.AsyncClient(base_url=second.url) as reader:
            assert (await reader.get(f"/s/{link}")).status_code == 200
            assert (await reader.get(f"/shared/{link}")).status_code == 200
            assert (await api.http.delete(f"/ai/conversations/{cid}/share")).status_code == 200
            assert (await reader.get(f"/s/{link}")).status_code == 410
            assert (await reader.get(f"/shared/{link}")).status_code == 410


SECRET = "the shared secret is teal"


@pytest.mark.parametrize("who", ["other", "none", "expired"])
async def test_access_matrix(
    server: VedikaServer, backend: tuple[str, Any], api: Api, other: Api, who: str
) -> None:
    """The access matrix (tests/test_access.py) for this issue's id-taking calls: another
    device gets 404 and no session or an expired one 401, never the data, and nothing
    changes; a link shows its snapshot and nothing more of the owner's."""
    from tests.test_access import expire

    cid = await imported(api, [{"role": "user", "content": SECRET}], title="teal")
    unshared = await imported(api, [{"role": "user", "content": "not shared at all"}])
    link = (await share(api, cid)).json()["share_id"]
    headers: dict[str, str] = {}
    if who in ("other", "expired"):
        headers = {"Authorization": f"Bearer {other.session_id}"}
    if who == "expired":
        await expire(backend[0], other.session_id)
    probes: list[tuple[str, str, Any]] = [
        ("POST", f"/ai/conversations/{cid}/share", {"allow_indexing": True}),
        ("GET", f"/ai/conversations/{cid}/share", None),
        ("DELETE", f"/ai/conversations/{cid}/share", None),
        ("GET", f"/ai/conversations/{unshared}/share", None),
        ("POST", f"/ai/conversations/{unshared}/share", {}),
        ("GET", f"/ai/conversations/{cid}/export?format=md", None),
        ("GET", f"/ai/conversations/{cid}/export?format=json", None),
        ("PATCH", f"/ai/conversations/{cid}", {"pinned": True, "archived": True}),
    ]
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as h:
        for method, path, body in probes:
            r = await h.request(method, path, json=body)
            expected = 404 if who == "other" else 401
            assert r.status_code == expected, (who, method, path, r.status_code, r.text)
            assert "teal" not in r.text
        shared = (await h.get(f"/shared/{link}")).json()  # the link is the grant...
        assert [m["content"] for m in shared["messages"]] == [SECRET]
        assert "not shared at all" not in str(shared)  # ...of that snapshot alone
        if who == "none":
            r = await h.post("/ai/conversations/import", json={"format": "x"})
            assert r.status_code == 401
    live = (await api.http.get(f"/ai/conversations/{cid}/share")).json()
    assert live["share_id"] == link and live["allow_indexing"] is False
    assert (await api.http.get(f"/ai/conversations/{unshared}/share")).status_code == 404
    assert (await api.http.get(f"/s/{link}")).status_code == 200
    item = next(
        c
        for c in (await api.http.get("/ai/conversations")).json()["conversations"]
        if c["conversation_id"] == cid
    )
    assert item["pinned"] is False and item["archived"] is False


async def test_a_link_follows_its_conversation_into_an_account_and_goes_with_it(
    server: VedikaServer, api: Api, backend: tuple[str, Any]
) -> None:
    """Claiming (signing up) keeps the device's link working and the account's to manage;
    closing the account deletes the link with everything else."""
    import time

    cid = await imported(api, [{"role": "user", "content": "claim me"}])
    link = (await share(api, cid)).json()["share_id"]
    email = f"share-{time.monotonic_ns()}@example.org"
    password = "correct horse battery staple"
    r = await api.http.post("/auth/register", json={"email": email, "password": password})
    assert r.status_code == 201, r.text
    assert r.json()["claimed_conversations"] == 1
    api.http.headers["Authorization"] = f"Bearer {r.json()['session_id']}"
    mine = await api.http.get(f"/ai/conversations/{cid}/share")
    assert mine.status_code == 200 and mine.json()["share_id"] == link
    assert (await api.http.get(f"/s/{link}")).status_code == 200
    exported = (await api.http.get("/auth/export")).json()
    assert [x["id"] for x in exported["shares"]] == [link]
    assert exported["shares"][0]["snapshot"]["messages"][0]["content"] == "claim me"
    closed = await api.http.request("DELETE", "/auth/account", json={"password": password})
    assert closed.status_code == 200, closed.text
    assert (await api.http.get(f"/s/{link}")).status_code == 404
    assert (await api.http.get(f"/shared/{link}")).status_code == 404
    engine = create_async_engine(backend[0])
    try:
        async with engine.connect() as conn:  # the snapshot's text went too
            assert (await conn.execute(select(shares).where(shares.c.id == link))).first() is None
    finally:
        await engine.dispose()
