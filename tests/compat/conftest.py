"""Fixtures for the compatibility tests: the original web client against a real server.

The client bakes its API URL in at build time, so the server runs on a fixed port
(``VEDIKA_COMPAT_API_PORT``, default 8611) and the client on another
(``VEDIKA_COMPAT_CLIENT_PORT``, default 8612). The build is cached (tests/compat/seed.py);
the first run on a machine spends a minute or two on `npm install` and `next build`.
Without Node, Chromium, Playwright or the client's sources every test here fails with
the reason (`make test` installs them: scripts/ensure-services.sh); a skip would hide
a machine that cannot prove compatibility.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.compat.seed import SeedClient, ensure_built, missing_tools
from tests.fakes.upstream import FakeUpstream
from tests.support.server import VedikaServer, started

API_PORT = int(os.environ.get("VEDIKA_COMPAT_API_PORT", "8611"))
CLIENT_PORT = int(os.environ.get("VEDIKA_COMPAT_CLIENT_PORT", "8612"))
API_URL = f"http://127.0.0.1:{API_PORT}"
CLIENT_ORIGIN = f"http://127.0.0.1:{CLIENT_PORT}"
DAILY_COINS = 25
# Debian's Chromium, as in tests/browser (not imported from there: that conftest is a
# plugin of its own directory, and importing it would load its fixtures twice).
CHROMIUM = os.environ.get("VEDIKA_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run"]

try:
    from playwright.sync_api import Browser, sync_playwright

    HAVE_PLAYWRIGHT = True
except ImportError:  # pragma: no cover - reported as a skip
    HAVE_PLAYWRIGHT = False

# The client's model picker lists what /routing/models says. An endpoint of our own with
# discovery off keeps the fake upstream's failure models (fake-500, fake-hang...) out of the
# list and out of "Best"; Steady is the best fit for everything so "Best" is predictable.
MODELS_TOML = """
[[endpoints]]
name = "compat"
kind = "openai"
base_url = "{base_url}"
discover = false

[[models]]
id = "compat-steady"
endpoint = "compat"
upstream_id = "fake-steady"
name = "Steady Fake"
description = "The standard reply, 10 ms a token."
speed = "fast"
good_at = {{ code = 1.0, analysis = 1.0, creative = 1.0, chat = 1.0, general = 1.0 }}

[[models]]
id = "compat-long"
endpoint = "compat"
upstream_id = "fake-long@50"
name = "Long Slow Fake"
description = "400 tokens at 50 ms: twenty seconds to answer, for reloading mid-answer."
speed = "slow"
good_at = {{ general = 0.1 }}

[[models]]
id = "compat-pricey"
endpoint = "compat"
upstream_id = "fake-fast"
name = "Pricey Fake"
description = "19 coins a message: two of them spend a day's coins."
coins_per_message = 19
good_at = {{ general = 0.1 }}
"""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.browser)


def _missing() -> str | None:
    if not HAVE_PLAYWRIGHT:
        return "the playwright package is not installed"
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return missing_tools()


def _assert_port_free(port: int) -> None:
    # The ports are baked into the build: a busy one cannot be swapped for a free one.
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", port)) == 0:
            pytest.fail(
                f"127.0.0.1:{port} is in use; the compat tests need it "
                "(or set VEDIKA_COMPAT_API_PORT / VEDIKA_COMPAT_CLIENT_PORT)."
            )


@pytest.fixture(scope="session")
def seed_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """The built client directory and the seconds the build took (0 when cached)."""
    missing = _missing()
    if missing:
        pytest.fail(f"cannot run the original web client here: {missing}")
    log = tmp_path_factory.mktemp("seed-build") / "build.log"
    return ensure_built(API_URL, log)


@pytest.fixture(scope="module")
def compat_server(
    upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[VedikaServer]:
    _assert_port_free(API_PORT)
    data_dir = tmp_path_factory.mktemp("compat-data")
    models = data_dir / "models.toml"
    models.write_text(MODELS_TOML.format(base_url=upstream.base_url))
    env = {
        "VEDIKA_DATABASE_URL": f"sqlite+aiosqlite:///{data_dir}/v.db",
        "VEDIKA_DATA_DIR": str(data_dir),
        "VEDIKA_MODELS_FILE": str(models),
        "VEDIKA_OLLAMA_AUTODETECT": "false",
        "VEDIKA_CORS_ORIGINS": CLIENT_ORIGIN,
        "VEDIKA_DAILY_CREDITS": str(DAILY_COINS),
        "VEDIKA_RATE_MESSAGES_PER_MINUTE": "0",
        "VEDIKA_RATE_SESSIONS_PER_MINUTE": "0",
        # A long flush interval: a reload that showed only the last flush would show
        # (almost) nothing, so the reload test tells live text from stored text.
        "VEDIKA_FLUSH_SECONDS": "5",
        "VEDIKA_LOG_LEVEL": "warning",
    }
    with started(env, port=API_PORT, log_path=data_dir / "server.log") as server:
        yield server


@pytest.fixture(scope="module")
def seed_client(
    seed_build: tuple[Path, float], compat_server: VedikaServer
) -> Iterator[SeedClient]:
    _assert_port_free(CLIENT_PORT)
    client = SeedClient(seed_build[0], CLIENT_PORT).start()
    try:
        yield client
    finally:
        client.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
