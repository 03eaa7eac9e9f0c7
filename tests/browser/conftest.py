"""Browser fixtures: a real `vedika serve` on SQLite, the fake upstream, Debian's Chromium.

Playwright drives the system Chromium (``VEDIKA_TEST_CHROMIUM``, default
``/usr/bin/chromium``); `playwright install` is never needed. Without Chromium or the
`playwright` package every test here is skipped with the reason. The page's
Content-Security-Policy stays enforced (no ``bypass_csp``): the tests run under the
same policy as users, so anything they evaluate goes through CDP, not ``eval``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import search_env, voice_env
from tests.fakes.search import FakeSearch
from tests.fakes.upstream import FakeUpstream
from tests.support.server import VedikaServer

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("VEDIKA_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # a fake microphone that needs no permission prompt (dictation by recording)
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]

try:
    from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

    HAVE_PLAYWRIGHT = True
except ImportError:  # pragma: no cover - reported as a skip
    HAVE_PLAYWRIGHT = False

NewPage = Callable[..., "Page"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = None
    if not HAVE_PLAYWRIGHT:
        reason = "the playwright package is not installed"
    elif not Path(CHROMIUM).exists():
        reason = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.browser)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


def _browser_server(upstream: FakeUpstream, data_dir: Path, **extra: str) -> Iterator[VedikaServer]:
    """A server for browser tests: SQLite, fast flushes, plenty of coins, no limits
    (the 500-message test sends 250 turns in a row; every context makes a session)."""
    env = {
        "VEDIKA_DATABASE_URL": f"sqlite+aiosqlite:///{data_dir}/v.db",
        "VEDIKA_DATA_DIR": str(data_dir),
        "OPENAI_BASE_URL": upstream.base_url,
        "VEDIKA_OLLAMA_AUTODETECT": "false",
        "VEDIKA_DAILY_CREDITS": "100000",
        "VEDIKA_RATE_MESSAGES_PER_MINUTE": "0",
        "VEDIKA_RATE_SESSIONS_PER_MINUTE": "0",
        "VEDIKA_FLUSH_SECONDS": "0.5",
        "VEDIKA_LOG_LEVEL": "warning",
        **extra,
    }
    server = VedikaServer(env, log_path=data_dir / "server.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="package")
def web(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VedikaServer]:
    """One server for the page tests."""
    yield from _browser_server(upstream, tmp_path_factory.mktemp("browser-data"))


@pytest.fixture(scope="package")
def web_modes(
    upstream: FakeUpstream, search: FakeSearch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[VedikaServer]:
    """A second server for Research, Agents, sources and voice: web search through the
    fake SearXNG, transcription and speech through the fake audio endpoints."""
    yield from _browser_server(
        upstream,
        tmp_path_factory.mktemp("browser-modes"),
        **search_env(search),
        **voice_env(upstream),
    )


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class PageProbe:
    """Uncaught page errors and our own console warnings, checked after each test."""

    def __init__(self) -> None:
        self.page_errors: list[str] = []
        self.warnings: list[str] = []
        self.dialogs: list[str] = []

    def attach(self, page: Page) -> Page:
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        page.on(
            "console",
            lambda msg: self.warnings.append(msg.text) if "vedika:" in msg.text else None,
        )

        def on_dialog(dialog: Any) -> None:
            self.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        return page


@pytest.fixture
def probe() -> PageProbe:
    return PageProbe()


def _context(browser: Browser, **options: Any) -> BrowserContext:
    context = browser.new_context(**options)
    context.set_default_timeout(15_000)
    return context


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = _context(browser, viewport={"width": 1280, "height": 800})
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context: BrowserContext, probe: PageProbe) -> Iterator[Page]:
    page = probe.attach(context.new_page())
    yield page
    assert probe.page_errors == [], f"uncaught errors in the page: {probe.page_errors}"
    assert probe.warnings == [], f"the page warned: {probe.warnings}"
    assert probe.dialogs == [], f"the page opened dialogs: {probe.dialogs}"


@pytest.fixture
def new_page(browser: Browser, probe: PageProbe) -> Iterator[NewPage]:
    """Factory for pages with other viewports (each in its own context)."""
    contexts: list[BrowserContext] = []

    def make(**options: Any) -> Page:
        ctx = _context(browser, **options)
        contexts.append(ctx)
        return probe.attach(ctx.new_page())

    yield make
    for ctx in contexts:
        ctx.close()
    assert probe.page_errors == [], f"uncaught errors in the page: {probe.page_errors}"


@pytest.fixture(scope="package")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def rest(web: VedikaServer) -> Iterator[httpx.Client]:
    """A plain API client with its own device session (for seeding data)."""
    with httpx.Client(base_url=web.url, timeout=30) as client:
        created = client.post("/auth/device-session", json={"device_info": {"user_agent": "seed"}})
        created.raise_for_status()
        session = created.json()
        client.headers["Authorization"] = f"Bearer {session['session_id']}"
        client.session = session  # type: ignore[attr-defined]
        yield client
