"""Export (Markdown with footnotes, JSON `vedika.conversation` v1) and import (issue 18),
against real `vedika serve` on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.client import Api, text_of

CITED = [
    {"role": "user", "content": "How deep is Lake Veyra?"},
    {
        "role": "assistant",
        "content": "It is 312 metres deep [1], the deepest in the range [2].",
        "model": "fake-fast",
        "citations": [
            {
                "index": 1,
                "title": "Lake Veyra",
                "url": "https://example.org/veyra",
                "site": "example.org",
            },
            {"index": 2, "title": "Lakes of the range", "url": "https://example.org/lakes"},
        ],
    },
    {"role": "user", "content": "And the second deepest?"},
    {
        "role": "assistant",
        "content": "Lake Orun, at 280 metres [1].",
        "citations": [{"index": 1, "title": "Orun", "url": "https://example.org/orun"}],
    },
]


def document(messages: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return {
        "format": "vedika.conversation",
        "version": 1,
        "title": "Lakes",
        "messages": messages,
    } | fields


async def import_(api: Api, doc: Any) -> Any:
    return await api.http.post("/ai/conversations/import", json=doc)


async def total(api: Api) -> int:
    r = await api.http.get("/ai/conversations", params={"limit": 1})
    a = await api.http.get("/ai/conversations", params={"limit": 1, "archived": "true"})
    return int(r.json()["total"]) + int(a.json()["total"])


async def test_markdown_export_has_citations_as_footnotes(api: Api) -> None:
    r = await import_(api, document(CITED))
    assert r.status_code == 201, r.text
    cid = r.json()["conversation_id"]
    md = await api.http.get(f"/ai/conversations/{cid}/export", params={"format": "md"})
    assert md.status_code == 200 and md.headers["content-type"].startswith("text/markdown")
    assert 'filename="Lakes.md"' in md.headers["content-disposition"]
    text = md.text
    assert text.startswith("# Lakes\n")
    assert "## Question\n\nHow deep is Lake Veyra?" in text
    assert "## Answer (fake-fast)" in text
    assert "It is 312 metres deep [^1], the deepest in the range [^2]." in text
    assert "Lake Orun, at 280 metres [^3]." in text  # numbered through the document
    assert "[^1]: [Lake Veyra](<https://example.org/veyra>) (example.org)" in text
    assert "[^2]: [Lakes of the range](<https://example.org/lakes>)" in text
    assert "[^3]: [Orun](<https://example.org/orun>)" in text


async def test_json_export_imports_back_as_a_new_conversation(api: Api, other: Api) -> None:
    events = await api.ask("Tell me about export formats", model_id="fake-fast")
    cid = events[-1]["conversation_id"]
    answer = text_of(events)
    r = await api.http.get(f"/ai/conversations/{cid}/export", params={"format": "json"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    doc = r.json()
    assert doc["format"] == "vedika.conversation" and doc["version"] == 1
    assert [(m["role"], m["content"]) for m in doc["messages"]] == [
        ("user", "Tell me about export formats"),
        ("assistant", answer),
    ]
    assert doc["messages"][1]["model"] and doc["created_at"] and doc["exported_at"]

    before = await total(other)
    made = await import_(other, doc)
    assert made.status_code == 201, made.text
    new_id = made.json()["conversation_id"]
    assert new_id != cid and made.json()["message_count"] == 2
    assert await total(other) == before + 1
    copy = await other.conversation(new_id)
    assert copy["title"] == doc["title"]
    assert [(m["role"], m["content"], m["status"]) for m in copy["messages"]] == [
        ("user", "Tell me about export formats", "complete"),
        ("assistant", answer, "complete"),
    ]
    # the copy is the importer's alone; exporting it again gives the same messages
    assert (await api.http.get(f"/ai/conversations/{new_id}")).status_code == 404
    again = (await other.http.get(f"/ai/conversations/{new_id}/export")).json()
    assert [(m["role"], m["content"]) for m in again["messages"]] == [
        (m["role"], m["content"]) for m in doc["messages"]
    ]


async def test_citations_survive_a_round_trip(api: Api) -> None:
    cid = (await import_(api, document(CITED))).json()["conversation_id"]
    doc = (await api.http.get(f"/ai/conversations/{cid}/export")).json()
    assert doc["messages"][1]["citations"] == CITED[1]["citations"]
    stored = await api.conversation(cid)
    assert stored["messages"][1]["citations"] == CITED[1]["citations"]
    assert [m["role"] for m in stored["messages"]] == ["user", "assistant"] * 2


async def test_only_the_owner_exports(api: Api, other: Api) -> None:
    cid = (await import_(api, document(CITED))).json()["conversation_id"]
    for fmt in ("md", "json"):
        r = await other.http.get(f"/ai/conversations/{cid}/export", params={"format": fmt})
        assert r.status_code == 404 and r.json()["error"] == "conversation_not_found"
    bad = await api.http.get(f"/ai/conversations/{cid}/export", params={"format": "xml"})
    assert bad.status_code in (400, 422) and bad.json()["error"]


def one(**message: Any) -> dict[str, Any]:
    return document([message])


def cited(**citation: Any) -> dict[str, Any]:
    return one(role="assistant", content="x", citations=[citation])


X = {"role": "user", "content": "x"}
OTHER_FORMAT = {"format": "chatgpt", "version": 1, "messages": []}
BAD: list[tuple[str, Any, int, str]] = [
    ("an array", [1, 2], 400, "bad_import"),
    ("a string", "hello", 400, "bad_import"),
    ("another format", OTHER_FORMAT, 400, "bad_import_format"),
    ("no format", {"version": 1, "messages": []}, 400, "bad_import_format"),
    ("a later version", document(CITED, version=2), 422, "unsupported_import_version"),
    ("a version as text", document(CITED, version="1"), 422, "unsupported_import_version"),
    ("no messages", document([]), 422, "invalid_import"),
    ("messages not a list", document({"role": "user"}), 422, "invalid_import"),  # type: ignore[arg-type]
    ("an unknown role", one(role="system", content="x"), 422, "invalid_import"),
    ("empty content", one(role="user", content=""), 422, "invalid_import"),
    ("content not text", one(role="user", content=5), 422, "invalid_import"),
    ("an unknown field", one(role="user", content="x", evil=1), 422, "invalid_import"),
    ("a title too long", document(CITED, title="t" * 201), 422, "invalid_import"),
    ("a script link", cited(index=1, title="t", url="javascript:alert(1)"), 422, "invalid_import"),
    ("an index as text", cited(index="1", title="t"), 422, "invalid_import"),
    ("too many messages", document([X] * 501), 422, "import_too_large"),
    ("too much text", document([X | {"content": "x" * 150_000}] * 7), 422, "import_too_large"),
]


@pytest.mark.parametrize(("case", "doc", "status", "code"), BAD, ids=[b[0] for b in BAD])
async def test_bad_imports_are_refused_and_write_nothing(
    api: Api, case: str, doc: Any, status: int, code: str
) -> None:
    before = await total(api)
    r = await import_(api, doc)
    assert r.status_code == status, (case, r.text)
    body = r.json()
    assert body["error"] == code and body["message"]
    if code == "invalid_import":
        assert body["details"]["problems"] and body["details"]["problems"][0]["field"]
    assert await total(api) == before


async def test_bodies_that_are_not_json_are_refused(api: Api) -> None:
    for raw in (b"", b"{not json", b"\xff\xfe", b"null"):
        r = await api.http.post(
            "/ai/conversations/import", content=raw, headers={"content-type": "application/json"}
        )
        assert r.status_code == 400 and r.json()["error"] == "bad_import", (raw, r.text)
    big = b'{"format": "vedika.conversation", "x": "' + b"a" * 3_000_000 + b'"}'
    r = await api.http.post(
        "/ai/conversations/import", content=big, headers={"content-type": "application/json"}
    )
    assert r.status_code == 413


async def test_imports_are_rate_limited_per_owner(api: Api, other: Api) -> None:
    """VEDIKA_RATE_IMPORTS_PER_MINUTE (10 by default): the 11th import of a minute is
    refused with Retry-After, and nothing is written; another owner is not held up."""
    doc = document([{"role": "user", "content": "again"}])
    statuses = [(await import_(api, doc)).status_code for _ in range(11)]
    if statuses[-1] != 429:  # the minute turned over mid-way: one more window
        statuses = [(await import_(api, doc)).status_code for _ in range(11)]
    assert statuses[-1] == 429 and statuses.count(201) >= 10
    before = await total(api)
    r = await import_(api, doc)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert r.json()["error"] == "rate_limited" and await total(api) == before
    assert (await import_(other, doc)).status_code == 201
