"""Organising (issue 18): pinned first, archived apart, and the list's search over what
was said (full text: FTS5 on SQLite, tsvector + GIN on PostgreSQL). Real `vedika serve`
on SQLite and PostgreSQL; each test a device of its own."""

from __future__ import annotations

from typing import Any

from tests.support.client import Api


async def make(api: Api, title: str, *answers: str) -> str:
    messages: list[dict[str, Any]] = [{"role": "user", "content": f"About {title}"}]
    messages += [{"role": "assistant", "content": a} for a in answers]
    doc = {"format": "vedika.conversation", "version": 1, "title": title, "messages": messages}
    r = await api.http.post("/ai/conversations/import", json=doc)
    assert r.status_code == 201, r.text
    return r.json()["conversation_id"]  # type: ignore[no-any-return]


async def listed(api: Api, **params: Any) -> list[dict[str, Any]]:
    r = await api.http.get("/ai/conversations", params=params)
    assert r.status_code == 200, r.text
    return r.json()["conversations"]  # type: ignore[no-any-return]


async def titles(api: Api, **params: Any) -> list[str]:
    return [c["title"] for c in await listed(api, **params)]


async def patch(api: Api, cid: str, **body: Any) -> Any:
    return await api.http.patch(f"/ai/conversations/{cid}", json=body)


async def test_pinned_come_first_and_archived_are_apart(api: Api) -> None:
    ids = {t: await make(api, t) for t in ("one", "two", "three")}
    assert await titles(api) == ["three", "two", "one"]
    r = await patch(api, ids["one"], pinned=True)
    assert r.status_code == 200 and r.json()["pinned"] is True and r.json()["archived"] is False
    assert await titles(api) == ["one", "three", "two"]
    first = (await listed(api))[0]
    assert first["pinned"] is True and first["archived"] is False

    r = await patch(api, ids["three"], archived=True)
    assert r.status_code == 200 and r.json()["archived"] is True
    assert await titles(api) == ["one", "two"]
    assert await titles(api, archived="true") == ["three"]
    assert (await api.http.get("/ai/conversations", params={"archived": "true"})).json()[
        "total"
    ] == 1
    assert (await api.http.get("/ai/conversations")).json()["total"] == 2
    # an archived conversation is still there to read, and comes back
    assert (await api.conversation(ids["three"]))["title"] == "three"
    assert (await patch(api, ids["three"], archived=False)).status_code == 200
    assert (await patch(api, ids["one"], pinned=False, title="one again")).json()[
        "title"
    ] == "one again"
    assert await titles(api) == ["three", "two", "one again"]


async def test_paging_keeps_pinned_first_without_gaps(api: Api) -> None:
    ids = [await make(api, f"c{n}") for n in range(5)]
    for cid in (ids[1], ids[3]):
        assert (await patch(api, cid, pinned=True)).status_code == 200
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        body = (await api.http.get("/ai/conversations", params=params)).json()
        assert body["total"] == 5
        seen += [c["title"] for c in body["conversations"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == ["c3", "c1", "c4", "c2", "c0"]


async def test_patch_is_checked(api: Api, other: Api) -> None:
    cid = await make(api, "checked")
    r = await patch(api, cid)
    assert r.status_code == 400 and r.json()["error"] == "nothing_to_change"
    assert (await patch(api, cid, pinned="sometimes")).status_code in (400, 422)
    assert (await patch(api, cid, title="   ")).json()["error"] == "empty_title"
    r = await patch(other, cid, pinned=True)
    assert r.status_code == 404 and r.json()["error"] == "conversation_not_found"
    assert (await listed(api))[0]["pinned"] is False
    bad = await api.http.get("/ai/conversations", params={"archived": "maybe"})
    assert bad.status_code in (400, 422)


async def test_search_finds_words_in_answers(api: Api, other: Api) -> None:
    await make(api, "Geology", "Basalt columns form as lava cools slowly.")
    await make(api, "Music", "A xylophone has wooden bars.", "Marimbas are larger.")
    await make(other, "Other's", "xylophone too, but not yours")
    assert await titles(api, q="xylophone") == ["Music"]
    assert await titles(api, q="xyloph") == ["Music"]  # as one types: a prefix
    assert await titles(api, q="MARIMBAS") == ["Music"]
    assert await titles(api, q="basalt lava") == ["Geology"]  # every word
    assert await titles(api, q="basalt xylophone") == []
    assert await titles(api, q="geolo") == ["Geology"]  # the title, as before
    for hostile in ('"', "*", "a OR b", "NEAR(", "col:x", "')--", "&|!:*"):
        r = await api.http.get("/ai/conversations", params={"q": hostile})
        assert r.status_code == 200, (hostile, r.text)


async def test_search_finds_a_streamed_answer_once_it_ends(api: Api) -> None:
    """A real turn: the question is indexed when stored, the answer when it ends."""
    events = await api.ask("Quokkas on Rottnest", model_id="fake-fast")
    cid = events[-1]["conversation_id"]
    assert (await patch(api, cid, title="renamed")).status_code == 200
    assert await titles(api, q="rottnest") == ["renamed"]
    assert await titles(api, q="deterministic") == ["renamed"]  # only in the answer


async def test_hidden_when_archived_even_in_search(api: Api) -> None:
    cid = await make(api, "Shelved", "pangolins everywhere")
    assert await titles(api, q="pangolins") == ["Shelved"]
    await patch(api, cid, archived=True)
    assert await titles(api, q="pangolins") == []
    assert await titles(api, q="pangolins", archived="true") == ["Shelved"]
