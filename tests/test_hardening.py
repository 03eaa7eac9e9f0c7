"""Security review, issue 12: text the store cannot hold, credentials in `vedika config`
and the logs, bounded device_info, forwarded headers, docs and metrics exposure.

Real `vedika serve` processes, real HTTP and sockets; the system tests run on SQLite
and PostgreSQL (the `server` fixture, tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.upstream import FakeUpstream
from tests.support.client import Api, Socket
from tests.support.server import ROOT, VedikaServer, serving

NUL = "a\x00b"
SURROGATE = "lone \ud800 surrogate"


async def send_json(http: httpx.AsyncClient, method: str, path: str, body: Any) -> httpx.Response:
    """`body` as ASCII JSON: a lone surrogate travels as its `\\ud800` escape (httpx's
    own `json=` would fail to encode it), as a hostile client would send it."""
    return await http.request(
        method, path, content=json.dumps(body), headers={"content-type": "application/json"}
    )


def assert_invalid(r: httpx.Response, field: str) -> None:
    """A 400 in the API's error shape (vedika.errors.error_body) naming `field`."""
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error"] == "validation_error" and body["status_code"] == 400, body
    # pydantic itself refuses some surrogates ("unable to parse raw data as a unicode
    # string") before protocol.check_text sees them: either way the field is named.
    assert f"invalid: {field}" in body["message"], body


# ------------------------------------------------------------------ 8. NUL, surrogates


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "surrogate"])
async def test_unstorable_text_is_400_on_rest(server: VedikaServer, api: Api, bad: str) -> None:
    # json.dumps writes both as \u escapes: the body is valid JSON, the text is not storable.
    for path in ("/ai/chat/start", "/ai/chat"):
        r = await send_json(api.http, "POST", path, {"message": bad, "model_id": "fake-fast"})
        assert_invalid(r, "message")
    r = await send_json(api.http, "POST", "/ai/chat/start", {"message": "hi", "attachments": [bad]})
    assert_invalid(r, "attachments.0")
    started = await api.start("a title to rename", model_id="fake-fast")
    path = f"/ai/conversations/{started['conversation_id']}"
    assert_invalid(await send_json(api.http, "PATCH", path, {"title": bad}), "title")
    r = await send_json(
        api.http,
        "POST",
        "/auth/device-session",
        {"device_info": {"user_agent": bad, "platform": "x"}},
    )
    assert_invalid(r, "device_info.user_agent")
    r = await send_json(api.http, "POST", "/routing/preferences", {"model_id": bad})
    assert_invalid(r, "model_id")
    # Nothing was half-done: the conversation is as it was, the server answers.
    conv = await api.conversation(started["conversation_id"])
    assert "\x00" not in json.dumps(conv) and conv["title"]
    ok = await api.start("still fine", model_id="fake-fast")
    assert (await api.wait_status(ok["conversation_id"], ok["message_id"]))["status"] == "complete"


async def test_unstorable_search_query_is_400(server: VedikaServer, api: Api) -> None:
    r = await api.http.get("/ai/conversations", params={"q": NUL})
    assert_invalid(r, "q")


async def _events_until(ws: Socket, done: Any, timeout: float = 30) -> list[dict[str, Any]]:
    """Socket events until `done(events)` is true."""
    events: list[dict[str, Any]] = []
    while not done(events):
        events.append(await ws.recv(timeout))
    return events


async def test_unstorable_socket_message_is_stream_error_and_the_socket_stays_open(
    server: VedikaServer, api: Api
) -> None:
    async with Socket(server.ws_url) as ws:
        # An answer streaming on this socket while the bad messages arrive.
        first = await ws.ask(api, "keep streaming", model_id="fake-slow", limit=1, timeout=30)
        answer = next(e["message_id"] for e in first if e["type"] == "content_chunk")
        await ws.send(routeKey="stream_chat", message=NUL, session_id=api.session_id)
        await ws.send(routeKey="stream_chat", message="hello", session_id=NUL)
        await ws.send(
            routeKey="stream_chat",
            message="fine text",
            conversation_id=NUL,
            session_id=api.session_id,
        )

        def three_errors_and_the_end(ev: list[dict[str, Any]]) -> bool:
            errors = [e for e in ev if e["type"] == "stream_error" and not e["message_id"]]
            done = any(e["type"] == "stream_complete" and e["message_id"] == answer for e in ev)
            return len(errors) >= 3 and done

        events = await _events_until(ws, three_errors_and_the_end)
        errors = [e for e in events if e["type"] == "stream_error" and not e["message_id"]]
        assert [e["code"] for e in errors] == ["validation_error"] * 3, errors
        assert [f.split("'")[1] for f in (e["error"] for e in errors)] == [
            "message",
            "session_id",
            "conversation_id",
        ], errors
        # No answer was started for any of them, and the first one went on to the end.
        assert not [e for e in events if e["type"] == "conversation_started"], events
        chunks = [e for e in first + events if e["type"] == "content_chunk"]
        assert {e["message_id"] for e in chunks} == {answer}
        assert [e["chunk_id"] for e in chunks] == list(range(1, len(chunks) + 1))
        await ws.send(routeKey="ping")
        assert (await ws.recv())["type"] == "pong"


# ------------------------------------------------------------------ 9. secrets shown


SECRETS = {
    "VEDIKA_REDIS_URL": ("redis://:redis-SECRET-1@cache.internal:6379/0", "cache.internal:6379"),
    "OPENAI_BASE_URL": ("https://bob:openai-SECRET-2@llm.internal/v1", "bob:******@llm.internal"),
    "VEDIKA_SEARXNG_URL": ("http://admin:searx-SECRET-3@searx.internal:8080", "searx.internal"),
    "VEDIKA_TRANSCRIBE_URL": ("https://u:whisper-SECRET-4@audio.internal/v1", "audio.internal"),
    "VEDIKA_DATABASE_URL": (
        "postgresql://vedika@db.internal/vedika?password=pg-SECRET-5&sslmode=require",
        "sslmode=require",
    ),
    "VEDIKA_EMBEDDINGS_URL": ("https://emb.internal/v1?api_key=emb-SECRET-6", "emb.internal"),
    "OPENAI_API_KEY": ("sk-live-SECRET-7-abcdef", "sk-"),
    "VEDIKA_METRICS_TOKEN": ("metrics-SECRET-8", "met"),
}


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("VEDIKA_", "OPENAI_", "ANTHROPIC_", "OLLAMA_"))
    }
    env["PYTHONPATH"] = str(ROOT / "src")
    env.update(extra)
    return env


def test_vedika_config_masks_every_credential(tmp_path: Path) -> None:
    env = clean_env(**{name: value for name, (value, _) in SECRETS.items()})
    out = subprocess.run(
        [sys.executable, "-m", "vedika.cli", "config"],
        cwd=tmp_path,  # no .env file from the repository
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "SECRET" not in out, out
    shown = json.loads(out)
    for name, (_value, visible) in SECRETS.items():
        assert visible in shown[name], (name, shown[name])
    assert shown["VEDIKA_REDIS_URL"] == "redis://:******@cache.internal:6379/0"
    assert shown["VEDIKA_DATABASE_URL"] == (
        "postgresql+asyncpg://vedika@db.internal/vedika?password=******&sslmode=require"
    )
    assert shown["VEDIKA_EMBEDDINGS_URL"] == "https://emb.internal/v1?api_key=******"
    assert shown["VEDIKA_DAILY_CREDITS"] == 20  # the rest is still shown


def test_logs_mask_credentials_in_any_field(tmp_path: Path) -> None:
    script = (
        "import structlog\n"
        "from vedika.logs import configure_logging\n"
        "configure_logging('info', True)\n"
        "structlog.get_logger('t').warning('upstream.failed', error='connect to "
        "http://bob:log-SECRET-1@llm.internal/v1?token=log-SECRET-2 refused', "
        "url='redis://:log-SECRET-3@cache:6379')\n"
    )
    err = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stderr
    line = json.loads(err.strip().splitlines()[-1])
    assert "SECRET" not in err, err
    assert line["error"] == "connect to http://bob:******@llm.internal/v1?token=****** refused"
    assert line["url"] == "redis://:******@cache:6379"


def test_trusted_proxies_must_be_addresses(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "vedika.cli", "config"],
        cwd=tmp_path,
        env=clean_env(VEDIKA_TRUSTED_PROXIES="10.0.0.1, proxy.example"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2 and "VEDIKA_TRUSTED_PROXIES" in run.stderr, run.stderr
    ok = subprocess.run(
        [sys.executable, "-m", "vedika.cli", "config"],
        cwd=tmp_path,
        env=clean_env(VEDIKA_TRUSTED_PROXIES="10.0.0.1, 192.168.0.0/16"),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(ok.stdout)["VEDIKA_TRUSTED_PROXIES"] == ["10.0.0.1", "192.168.0.0/16"]


# ------------------------------------------------------------------ 10. device_info


async def stored_device_info(db_url: str, session_id: str) -> Any:
    """device_info as the database holds it, read past the API."""
    if db_url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(db_url.split(":///", 1)[1]) as db:
            row = db.execute(
                "SELECT device_info FROM device_sessions WHERE session_id = ?", (session_id,)
            ).fetchone()
        return row[0]
    import asyncpg

    conn = await asyncpg.connect(db_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return await conn.fetchval(
            "SELECT device_info::text FROM device_sessions WHERE session_id = $1", session_id
        )
    finally:
        await conn.close()


async def test_device_info_is_bounded(server: VedikaServer, backend: tuple[str, Path]) -> None:
    db_url, _ = backend
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as h:
        huge = {
            "user_agent": "Mozilla/5.0 " + "u" * 600_000,
            "platform": "p" * 1000,
            "language": "en-GB",
            "screen": "1920x1080",
            "anything_else": "z" * 300_000,
        }
        r = await h.post("/auth/device-session", json={"device_info": huge})
        assert r.status_code == 201, r.text
        raw = await stored_device_info(db_url, r.json()["session_id"])
        assert len(raw) <= 2048, len(raw)
        stored = json.loads(raw)
        assert set(stored) == {"user_agent", "platform", "language", "screen"}
        assert len(stored["user_agent"]) == 512 and stored["user_agent"].startswith("Mozilla/5.0")
        assert stored["platform"] == "p" * 64 and stored["language"] == "en-GB"

        # `screen` as an object: a few numbers, nothing nested or large.
        r = await h.post(
            "/auth/device-session", json={"device_info": {"screen": {"width": 390, "h": 844}}}
        )
        assert r.status_code == 201, r.text
        for screen in (
            {"w": "s" * 900_000},
            {"a": {"b": [1] * 1000}},
            {str(i): i for i in range(9)},
        ):
            r = await h.post("/auth/device-session", json={"device_info": {"screen": screen}})
            assert r.status_code == 400 and r.json()["error"] == "validation_error", r.text
            assert "screen" in r.json()["message"]


# ------------------------------------------------------------------ 11a. forwarded headers


@pytest.fixture
def running(tmp_path: Path, upstream: FakeUpstream, models_file: Path) -> Iterator[Any]:
    """`running(**env)` starts a SQLite server; every one is stopped after the test."""
    names = itertools.count()
    with ExitStack() as servers:

        def start(**extra: str) -> VedikaServer:
            data = tmp_path / f"s{next(names)}"
            data.mkdir()
            return servers.enter_context(serving(data, upstream, models_file, **extra))

        yield start


async def session_codes(srv: VedikaServer, forwarded: list[str]) -> list[int]:
    async with httpx.AsyncClient(base_url=srv.url) as h:
        codes = []
        for address in forwarded:
            r = await h.post("/auth/device-session", json={}, headers={"X-Forwarded-For": address})
            codes.append(r.status_code)
        return codes


async def test_forwarded_for_counts_only_from_listed_proxies(running: Any) -> None:
    spoofed = [f"203.0.113.{i}" for i in range(1, 7)]
    # Default: nobody is a trusted proxy; every request is 127.0.0.1's, whatever it says.
    srv = running(VEDIKA_RATE_SESSIONS_PER_MINUTE="3")
    assert await session_codes(srv, spoofed) == [201, 201, 201, 429, 429, 429]
    # Listed: 127.0.0.1 is the proxy, the forwarded address is the client's.
    srv = running(VEDIKA_RATE_SESSIONS_PER_MINUTE="3", VEDIKA_TRUSTED_PROXIES="127.0.0.1")
    assert await session_codes(srv, spoofed) == [201] * 6
    assert await session_codes(srv, ["198.51.100.7"] * 4) == [201, 201, 201, 429]
    # A proxy elsewhere does not make 127.0.0.1 trusted.
    srv = running(VEDIKA_RATE_SESSIONS_PER_MINUTE="3", VEDIKA_TRUSTED_PROXIES="10.0.0.0/8")
    assert await session_codes(srv, spoofed[:4]) == [201, 201, 201, 429]


# ------------------------------------------------------------------ 11b. docs, metrics


async def status_of(srv: VedikaServer, *paths: str, **headers: str) -> list[int]:
    async with httpx.AsyncClient(base_url=srv.url) as h:
        return [(await h.get(p, headers=headers)).status_code for p in paths]


async def test_docs_and_metrics_are_closed_in_production(running: Any) -> None:
    dev = running()
    assert await status_of(dev, "/docs", "/openapi.json", "/metrics") == [200, 200, 200]
    assert await status_of(dev, "/redoc") == [404]  # FastAPI's CDN page is never mounted

    prod = running(VEDIKA_ENV="production")
    assert await status_of(prod, "/docs", "/openapi.json", "/redoc", "/metrics") == [404] * 4
    async with httpx.AsyncClient(base_url=prod.url) as h:
        body = (await h.get("/metrics")).json()
        assert body["error"] == "not_found" and body["status_code"] == 404

    token = "scrape-me-0123456789"
    prod = running(VEDIKA_ENV="production", VEDIKA_EXPOSE_DOCS="true", VEDIKA_METRICS_TOKEN=token)
    assert await status_of(prod, "/docs", "/openapi.json") == [200, 200]
    assert await status_of(prod, "/metrics") == [404]
    assert await status_of(prod, "/metrics", authorization="Bearer wrong") == [404]
    assert await status_of(prod, "/metrics", authorization=token) == [404]
    async with httpx.AsyncClient(base_url=prod.url) as h:
        r = await h.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and "vedika_" in r.text

    # A token applies in development too.
    dev = running(VEDIKA_METRICS_TOKEN=token)
    assert await status_of(dev, "/metrics") == [404]
    assert await status_of(dev, "/metrics", authorization=f"Bearer {token}") == [200]


# ------------------------------------------------------------------ 11c. /docs offline


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        for name in ("src", "href"):
            if found.get(name):
                self.urls.append(str(found[name]))
        self._in_script = tag == "script" and not found.get("src")

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False


async def test_docs_page_needs_no_other_host(server: VedikaServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as h:
        r = await h.get("/docs")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        csp = r.headers["content-security-policy"]
        assert not re.search(r"https?:|//|\*|unsafe-inline|unsafe-eval", csp), csp
        assert "script-src 'self'" in csp and "style-src 'self'" in csp
        links = _Links()
        links.feed(r.text)
        assert links.inline_scripts == 0, r.text
        assert len(links.urls) >= 3 and all(
            u.startswith("/") and not u.startswith("//") for u in links.urls
        ), links.urls
        kinds = {".js": "javascript", ".css": "text/css", ".png": "image/png"}
        for url in links.urls:
            asset = await h.get(url)
            assert asset.status_code == 200, url
            want = next(v for k, v in kinds.items() if url.endswith(k))
            assert want in asset.headers["content-type"], (url, asset.headers["content-type"])
            assert b"sourceMappingURL" not in asset.content[-300:], url
        assert "SwaggerUIBundle" in (await h.get(links.urls[-2])).text
        assert (await h.get("/openapi.json")).json()["info"]["title"] == "Vedika"


async def test_socket_handshake_with_unstorable_session_is_refused(
    server: VedikaServer,
) -> None:
    import websockets

    with pytest.raises(websockets.InvalidStatus) as info:
        async with websockets.connect(server.ws_url + "?session_id=a%00b"):
            pass
    assert info.value.response.status_code == 403
    async with Socket(server.ws_url) as ws:  # and the server is fine
        await ws.send(routeKey="ping")
        assert (await asyncio.wait_for(ws.recv(), 5))["type"] == "pong"


@pytest.mark.parametrize(
    "url",
    [
        "/ai/conversations/%00",
        "/ai/conversations?cursor=%00",
        "/files/%00",
        "/auth/device-session/validate?session_id=%00",
    ],
)
async def test_unstorable_text_in_urls_is_400(server: VedikaServer, api: Api, url: str) -> None:
    """A NUL or unpaired surrogate in a path or query (where no model checks it) is a
    clear 400, not a 503 `database_unavailable` from PostgreSQL."""
    r = await api.http.get(url)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "validation_error"
