"""What is connected, told at start (issue 20): `vedika serve` prints a short banner
(URL, database, models and where from, web search, the next step when something is
missing), and `/api/config` carries the same facts for the operator's status section in
development only."""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from pathlib import Path

import httpx

from tests.conftest import search_env
from tests.fakes.search import FakeSearch
from tests.fakes.upstream import FakeUpstream
from tests.support.server import VedikaServer, sqlite_url, started


def _serve(tmp: Path, **env: str) -> AbstractContextManager[VedikaServer]:
    """A server with nothing configured but `env` (not server_env: no model, no search)."""
    base = {
        "VEDIKA_DATABASE_URL": sqlite_url(tmp / "v.db"),
        "VEDIKA_DATA_DIR": str(tmp),
        "VEDIKA_OLLAMA_AUTODETECT": "false",
        "VEDIKA_LOG_LEVEL": "warning",
    }
    return started({**base, **env}, log_path=tmp / "serve.log")


def _banner(log: Path) -> str:
    for _ in range(50):  # printed once the models are discovered, right after start
        text = log.read_text()
        if "Vedika is serving" in text:
            return text[text.index("Vedika is serving") :]
        time.sleep(0.1)
    raise AssertionError(f"no banner in: {log.read_text()[-2000:]}")


def test_banner_with_nothing_configured_says_what_next(tmp_path: Path) -> None:
    with _serve(tmp_path) as srv:
        text = _banner(tmp_path / "serve.log")
        config = httpx.get(f"{srv.url}/api/config").json()
    assert f"Vedika is serving at http://127.0.0.1:{srv.port}" in text
    assert f"database  SQLite at {tmp_path}/v.db" in text
    assert "models    none connected: the offline model answers" in text
    assert "search    off (no web search provider)" in text
    assert "next      Connect a model: set OPENAI_BASE_URL" in text
    assert "next      Turn on web search: set VEDIKA_SEARXNG_URL" in text
    status = config["status"]  # development: the operator's status section
    assert status["models"] == [] and status["search"] is None
    assert len(status["next_steps"]) == 2


def test_banner_names_models_and_search_and_hides_credentials(
    tmp_path: Path, upstream: FakeUpstream, search: FakeSearch
) -> None:
    with_password = upstream.base_url.replace("http://", "http://vedika:sekrit-pass@")
    log = tmp_path / "serve.log"
    with _serve(tmp_path, OPENAI_BASE_URL=with_password, **search_env(search)):
        text = _banner(log)
    models_line = next(line for line in text.splitlines() if line.startswith("  models"))
    assert (
        "fake-steady" in models_line
        and "(from openai: http://vedika:******@127.0.0.1" in models_line
    )
    assert "sekrit-pass" not in log.read_text()
    assert "search    searxng" in text
    assert "next " not in text


def test_status_is_not_sent_in_production(tmp_path: Path) -> None:
    with _serve(tmp_path, VEDIKA_ENV="production") as srv:
        config = httpx.get(f"{srv.url}/api/config").json()
    assert config["status"] is None
