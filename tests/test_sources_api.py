"""Sources through a real `vedika serve` (SQLite and PostgreSQL): uploads and their limits,
file ownership, cited answers over the socket, web answers, and the offline answerer."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import httpx

from tests.fakes.search import FakeSearch
from tests.fakes.upstream import FakeUpstream
from tests.sources.corpus import RAIL_PAGES
from tests.support.client import Api, assert_invariants, chunks_of
from tests.support.documents import make_bomb_pdf, make_pdf, make_zip_bomb_docx
from tests.support.server import sqlite_url, started

Upload = tuple[str, bytes]
HANDBOOK: Upload = ("orsk-rail-handbook.pdf", make_pdf(RAIL_PAGES, title="Orsk Rail handbook"))


async def upload(api: Api, *files: Upload) -> httpx.Response:
    return await api.http.post(
        "/files",
        files=[("files", (name, data, "application/octet-stream")) for name, data in files],
    )


async def upload_ok(api: Api, *files: Upload) -> list[dict[str, Any]]:
    r = await upload(api, *files)
    assert r.status_code == 201, r.text
    result: list[dict[str, Any]] = r.json()["files"]
    return result


# ---------------------------------------------------------------- files


async def test_upload_list_get_delete_and_ownership(server, api: Api, other: Api) -> None:
    notes = ("notes.md", b"# Notes\n\nThe heron nests in April.\n")
    stored = await upload_ok(api, HANDBOOK, notes)
    pdf, md = stored
    assert pdf["name"] == "orsk-rail-handbook.pdf" and pdf["content_type"] == "application/pdf"
    assert pdf["pages"] == 8 and pdf["chunks"] >= 8 and pdf["status"] == "ready"
    assert md["content_type"] == "text/markdown" and md["size"] == len(notes[1])
    listed = (await api.http.get("/files")).json()
    assert [f["file_id"] for f in listed["files"]] == [pdf["file_id"], md["file_id"]] or {
        f["file_id"] for f in listed["files"]
    } == {pdf["file_id"], md["file_id"]}
    assert listed["total"] == 2 and listed["limits"]["max_files_per_message"] == 3
    assert (await api.http.get(f"/files/{pdf['file_id']}")).json()["name"] == pdf["name"]
    # another device sees nothing and deletes nothing
    assert (await other.http.get("/files")).json()["files"] == []
    for method in ("GET", "DELETE"):
        r = await other.http.request(method, f"/files/{pdf['file_id']}")
        assert r.status_code == 404 and r.json()["error"] == "file_not_found"
    anonymous = await httpx.AsyncClient(base_url=server.url).get("/files")
    assert anonymous.status_code == 401
    assert (await api.http.delete(f"/files/{pdf['file_id']}")).status_code == 204
    assert (await api.http.get(f"/files/{pdf['file_id']}")).status_code == 404
    assert [f["file_id"] for f in (await api.http.get("/files")).json()["files"]] == [md["file_id"]]


async def test_names_are_text_and_files_live_under_server_ids(
    server, api: Api, backend: tuple[str, Path]
) -> None:
    names = ["../../escape.txt", "/etc/absolute.txt", "rtl\u202etxt.exe.txt", "x" * 500 + ".txt"]
    stored = []
    for pair in (names[:2], names[2:]):
        stored += await upload_ok(api, *[(n, b"plain words about herons") for n in pair])
    assert [f["name"] for f in stored] == [
        "escape.txt",
        "absolute.txt",
        "rtltxt.exe.txt",
        "x" * 196 + ".txt",
    ]
    root = backend[1] / "files"
    on_disk = {p.name for p in root.rglob("*") if p.is_file()}
    assert {f["file_id"] for f in stored} <= on_disk
    assert not any("escape" in n or "absolute" in n for n in on_disk)
    assert not (backend[1].parent / "escape.txt").exists()


async def test_type_is_read_from_content(api: Api) -> None:
    html = (
        b"<html><body><article><p>Herons nest in tall trees near water.</p></article></body></html>"
    )
    (stored,) = await upload_ok(api, ("report.pdf", html))
    assert stored["content_type"] == "text/html" and stored["kind"] == "html"


async def test_refused_uploads(api: Api) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    cases: list[tuple[list[Upload], int, str]] = [
        (
            [("a.txt", b"a"), ("b.txt", b"b"), ("c.txt", b"c"), ("d.txt", b"d")],
            413,
            "too_many_files",
        ),
        ([("big.txt", b"x" * 3_000_001)], 413, "file_too_large"),
        ([("empty.pdf", b"")], 400, "empty_file"),
        ([("image.pdf", png)], 415, "unsupported_file_type"),
        ([("bomb.pdf", make_bomb_pdf())], 413, "decompression_bomb"),
        ([("bomb.docx", make_zip_bomb_docx(60_000_000))], 413, "decompression_bomb"),
        ([("scan.pdf", make_pdf([""]))], 415, "no_text"),
        ([("good.txt", b"good words"), ("bad.pdf", png)], 415, "unsupported_file_type"),
    ]
    for files, status, code in cases:
        r = await upload(api, *files)
        body = r.json()
        assert (r.status_code, body["error"]) == (status, code), (files[0][0], body)
        assert body["status_code"] == status and body["message"].endswith((".", "!"))
        assert "Traceback" not in body["message"] and "/" not in body["message"].split(":")[0]
    assert (await api.http.get("/files")).json()["files"] == []  # all or nothing
    r = await api.http.post("/files", json={"files": []})
    assert r.status_code == 400 and r.json()["error"] == "no_files"


async def test_upload_body_has_its_own_cap(api: Api) -> None:
    """/files takes bodies up to 3 files x 3 MB + 1 MB; other routes keep the 2 MB cap."""
    r = await upload(api, ("huge.txt", b"y" * 12_000_000))
    assert r.status_code == 413 and r.json()["error"] == "payload_too_large"
    (ok,) = await upload_ok(api, ("two-mb.txt", b"words " * 450_000))
    assert ok["size"] == 2_700_000


async def test_device_quota(api: Api) -> None:
    for batch in range(2):
        await upload_ok(api, *[(f"f{batch}{i}.txt", b"some words") for i in range(3)])
    r = await upload(api, ("one-too-many.txt", b"words"))
    assert r.status_code == 413 and r.json()["error"] == "storage_quota_exceeded"


async def test_config_announces_sources(api: Api) -> None:
    features = (await api.http.get("/api/config")).json()["features"]
    assert features["web_search"] is True and features["web_search_provider"] == "searxng"
    assert features["file_upload"] is True and ".pdf" in features["uploads"]["accept"]


# ---------------------------------------------------------------- answers


async def test_someone_elses_file_never_reaches_the_model(
    server, api: Api, other: Api, upstream: FakeUpstream
) -> None:
    secret = b"The vault code of the Ostrander family is 4417-kestrel."
    (theirs,) = await upload_ok(other, ("secret.txt", secret))
    before = (await api.balance())["credits_remaining"]
    r = await api.http.post(
        "/ai/chat/start",
        json={"message": "what is the vault code?", "attachments": [theirs["file_id"]]},
    )
    assert r.status_code == 404 and r.json()["error"] == "file_not_found"
    events = await api.ask("tell me the vault code", attachments=[theirs["file_id"]], timeout=60)
    assert [e["type"] for e in events] == ["stream_error"] and events[0]["code"] == "file_not_found"
    r = await api.http.post(
        "/ai/chat", json={"message": "vault code?", "sources": ["files"], "model_id": "fake-fast"}
    )
    assert r.status_code == 200 and r.json()["citations"] == []  # api has no files of its own
    assert (await api.balance())["credits_remaining"] == before - 1
    assert all("kestrel" not in str(req) for req in upstream.requests())


async def test_cited_answer_over_the_socket(server, api: Api, upstream: FakeUpstream) -> None:
    (pdf,) = await upload_ok(api, HANDBOOK)
    question = "How much does a day pass cost on Orsk Rail?"
    events = await api.ask(
        question, model_id="fake-steady", attachments=[pdf["file_id"]], timeout=60
    )
    done = assert_invariants(events)
    types = [e["type"] for e in events]
    assert types.index("sources") < types.index("content_chunk")
    cites = next(e for e in events if e["type"] == "sources")["citations"]
    assert cites[0]["index"] == 1 and cites[0]["file_id"] == pdf["file_id"]
    assert cites[0]["title"] == "orsk-rail-handbook.pdf" and cites[0]["page"] == 1
    assert "14 euros" in cites[0]["snippet"]
    assert done["type"] == "stream_complete" and done["citations"] == cites
    conv = await api.conversation(events[0]["conversation_id"])
    user, answer = conv["messages"][-2:]
    assert user["attachments"] == [pdf["file_id"]] and user["sources"] == ["files"]
    assert answer["citations"] == cites and answer["content"] == done["full_response"]
    sent = next(r for r in reversed(upstream.requests()) if question in str(r["messages"][-1]))
    system = sent["messages"][0]["content"]
    assert "[1] orsk-rail-handbook.pdf (attached file, page 1)" in system
    assert "A day pass costs 14 euros" in " ".join(system.split())
    # a follow-up in the same conversation keeps using the attached file
    follow = await api.ask(
        "And are children free?",
        conversation_id=events[0]["conversation_id"],
        sources=["files"],
        model_id="fake-fast",
        timeout=60,
    )
    cited = next(e for e in follow if e["type"] == "sources")["citations"]
    assert any("under six" in c["snippet"] for c in cited)


async def test_replay_after_the_answer_keeps_sources(server, api: Api) -> None:
    (pdf,) = await upload_ok(api, HANDBOOK)
    start = await api.start(
        "Where is lost property kept?", model_id="fake-fast", attachments=[pdf["file_id"]]
    )
    await api.wait_status(start["conversation_id"], start["message_id"])
    async with api.http.stream("GET", f"/ai/chat/stream/{start['message_id']}") as resp:
        body = (await resp.aread()).decode()
    assert "event: sources" in body and body.index("event: sources") < body.index(
        "event: content_chunk"
    )


async def test_web_answer_cites_pages_and_skips_traps(
    server, api: Api, upstream: FakeUpstream, search: FakeSearch
) -> None:
    question = "How deep is Lake Veyra? trap"
    r = await api.http.post(
        "/ai/chat", json={"message": question, "sources": ["web"], "model_id": "fake-fast"}
    )
    assert r.status_code == 200, r.text
    cites = r.json()["citations"]
    assert cites and cites[0]["url"] == f"{search.base_url}/pages/lake-veyra"
    assert cites[0]["site"] == "127.0.0.1" and "312 metres" in cites[0]["snippet"]
    assert all("redirect" not in c["url"] for c in cites)
    sent = next(r for r in reversed(upstream.requests()) if question in str(r["messages"][-1]))
    assert "312 metres" in sent["messages"][0]["content"]


async def test_hostile_page_titles_are_plain_text(server, api: Api) -> None:
    r = await api.http.post(
        "/ai/chat",
        json={
            "message": "hostile kite festival tails",
            "sources": ["web"],
            "model_id": "fake-fast",
        },
    )
    cites = r.json()["citations"]
    assert cites and all("<" not in c["title"] and "onerror" not in c["title"] for c in cites)


async def test_offline_answerer_quotes_the_attached_file(tmp_path: Path) -> None:
    env = {
        "VEDIKA_DATABASE_URL": sqlite_url(tmp_path / "v.db"),
        "VEDIKA_DATA_DIR": str(tmp_path),
        "VEDIKA_OLLAMA_AUTODETECT": "false",
        "VEDIKA_OFFLINE_DELAY_MS": "0",
        "VEDIKA_LOG_LEVEL": "warning",
    }
    with started(env, log_path=tmp_path / "server.log") as srv:
        async with Api(srv.url) as api:
            (pdf,) = await upload_ok(api, HANDBOOK)
            events = await api.ask(
                "How much is a day pass?", attachments=[pdf["file_id"]], timeout=60
            )
            done = assert_invariants(events)
            text = done["full_response"]
            assert text.startswith("_No language model is connected")
            assert "OPENAI_BASE_URL" in text and "A day pass costs 14 euros" in text
            assert "orsk-rail-handbook.pdf, page 1" in text and "[1]" in text
            assert done["citations"][0]["page"] == 1 and len(chunks_of(events)) > 5
            plain = await api.ask("Hello, who are you?", timeout=60)
            assert "No language model is connected" in assert_invariants(plain)["full_response"]
            assert not any(e["type"] == "sources" for e in plain)


def test_docx_fixture_is_a_real_zip() -> None:
    with zipfile.ZipFile(io.BytesIO(make_zip_bomb_docx(10_000_000))) as zf:
        assert "word/document.xml" in zf.namelist()
