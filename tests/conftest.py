"""Shared fixtures: the fake upstream, a real `vedika serve` per database, API clients.

System tests run against both SQLite and PostgreSQL (127.0.0.1:5432, database
`test`): each backend gets its own schema-fresh database and its own server. The
PostgreSQL cases carry the `postgres` mark, so `-m "not postgres"` (make test-fast)
runs the SQLite ones alone.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.fakes.search import FakeSearch
from tests.fakes.upstream import FakeUpstream
from tests.support.client import Api
from tests.support.server import VedikaServer, log_sizes, log_tails, serving, sqlite_url

PG_ADMIN = os.environ.get("VEDIKA_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")

# The databases a system test runs on: fixture params (`backend`, and the fixtures of
# their own in test_public_safety.py, modes/ and sources/).
DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--shard",
        metavar="K/N",
        help="run every N-th selected test from the K-th on (K in 1..N), so that N "
        "processes side by side run the selection once: `make test-fast`",
    )


@pytest.hookimpl(trylast=True)  # after -m and -k have deselected theirs
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    shard = config.getoption("--shard")
    if not shard:
        return
    k, n = (int(x) for x in shard.split("/"))
    if not 1 <= k <= n:
        raise pytest.UsageError(f"--shard {shard}: K must be 1 to N")
    config.hook.pytest_deselected(items=[t for i, t in enumerate(items) if i % n != k - 1])
    items[:] = items[k - 1 :: n]


_LOG_MARKS = pytest.StashKey[dict[Path, int]]()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[_LOG_MARKS] = log_sizes()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Iterator[pytest.TestReport]:
    """A failing test's report carries what its servers logged while it ran (their
    warnings and errors, tracebacks included): in CI that output is all there is."""
    report: pytest.TestReport = yield
    if report.failed:
        for title, text in log_tails(item.stash.get(_LOG_MARKS, {})):
            report.sections.append((title, text))
    return report


@pytest.fixture(autouse=True)
def no_database_connection_left_open(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test closes the SQLite connections it opened (torn down after every other
    fixture of the test). One left open is closed when the collector finds it, from
    whatever test runs then, and its thread fails if that test's event loop is not
    the one it was opened on (CI, once: a Store's writer outlived engine.dispose()).
    Any thread the test leaves running carries its name, so that a failure of it
    later, reported at another test, says whose it was."""
    before = {t.ident for t in threading.enumerate()}
    yield
    left = [t for t in threading.enumerate() if t.ident not in before]
    for thread in left:
        if "(" in thread.name:  # "Thread-N (target)"
            thread.name = f"{thread.name} of {request.node.nodeid}"
    connections = [t for t in left if "_connection_worker_thread" in t.name]
    for thread in connections:
        thread.join(0.5)  # a close in flight
    if any(t.is_alive() for t in connections):
        pytest.fail("the test left an aiosqlite connection open (close its Store or engine)")


MODELS_TOML = """
[[models]]
id = "fake-pricey"
endpoint = "openai"
upstream_id = "fake-fast"
name = "Pricey Fake"
description = "Costs 19 coins a message, for the last-coin race."
coins_per_message = 19
good_at = ["creative"]

[[models]]
id = "fake-coder"
endpoint = "openai"
upstream_id = "fake-fast"
name = "Fake Coder"
description = "Good at code."
speed = "fast"
best_for = ["code", "debugging"]
good_at = { code = 0.95, general = 0.3 }
"""


@pytest.fixture(scope="session")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream(delay_ms=10) as fake:
        yield fake


@pytest.fixture(scope="session")
def search() -> Iterator[FakeSearch]:
    """A fake SearXNG and the pages it links to, on 127.0.0.1 (tests/fakes/search.py)."""
    with FakeSearch() as fake:
        yield fake


def search_env(search: FakeSearch) -> dict[str, str]:
    """Web search through the fake SearXNG; the fetcher may reach 127.0.0.1 (the fake's
    pages) and nothing else on loopback. Small file limits keep the limit tests cheap."""
    return {
        "VEDIKA_SEARXNG_URL": search.base_url,
        "VEDIKA_FETCH_ALLOW": "127.0.0.1/32",
        "VEDIKA_MAX_FILE_BYTES": "3000000",
        "VEDIKA_MAX_FILES_PER_MESSAGE": "3",
        "VEDIKA_MAX_DEVICE_FILES": "6",
        "VEDIKA_SEARCH_TIMEOUT": "20",
        "VEDIKA_FETCH_TIMEOUT": "10",
    }


def voice_env(upstream: FakeUpstream) -> dict[str, str]:
    """Transcription and speech through the fake upstream's audio endpoints
    (tests/fakes/audio.py), with small limits so the limit tests stay cheap."""
    return {
        "VEDIKA_TRANSCRIBE_URL": upstream.base_url,
        "VEDIKA_TRANSCRIBE_MODEL": "fake-whisper",
        "VEDIKA_TRANSCRIBE_MAX_BYTES": "200000",
        "VEDIKA_SPEECH_URL": upstream.openai_base_url,
        "VEDIKA_SPEECH_MODEL": "fake-tts",
        "VEDIKA_SPEECH_MAX_CHARS": "500",
    }


@pytest.fixture(scope="session")
def models_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models") / "models.toml"
    path.write_text(MODELS_TOML)
    return path


def fresh_pg_database() -> str:
    """Create an empty database for one test session; returns its asyncpg URL."""
    import asyncio

    import asyncpg

    name = f"vedika_test_{uuid.uuid4().hex[:10]}"

    async def create() -> None:
        conn = await asyncpg.connect(PG_ADMIN)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    base = PG_ADMIN.rsplit("/", 1)[0]
    return f"{base}/{name}".replace("postgresql://", "postgresql+asyncpg://")


def drop_pg_database(url: str) -> None:
    import asyncio

    import asyncpg

    name = url.rsplit("/", 1)[1]

    async def drop() -> None:
        conn = await asyncpg.connect(PG_ADMIN)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


# Sign-in limits out of the way, for test modules that sign in many times.
NO_SIGN_IN_LIMITS = {
    "VEDIKA_RATE_LOGINS_PER_MINUTE": "100000",
    "VEDIKA_RATE_LOGINS_PER_ACCOUNT_HOUR": "100000",
}


@contextmanager
def a_database(kind: str, data_dir: Path) -> Iterator[str]:
    """An empty database of `kind` (one of DATABASES) for one server: its URL. A
    PostgreSQL database of its own, dropped afterwards; a SQLite file in `data_dir`."""
    if kind == "sqlite":
        yield sqlite_url(data_dir / "v.db")
        return
    url = fresh_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(url)


@pytest.fixture
def fresh_pg() -> Iterator[str]:
    """An empty PostgreSQL database for one test."""
    url = fresh_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(url)


@pytest.fixture(scope="session", params=DATABASES)
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    data_dir = tmp_path_factory.mktemp(f"data-{request.param}")
    if request.param == "sqlite":
        yield sqlite_url(data_dir / "vedika.db"), data_dir
        return
    url = fresh_pg_database()
    try:
        yield url, data_dir
    finally:
        drop_pg_database(url)


@pytest.fixture(scope="session")
def server(
    backend: tuple[str, Path], upstream: FakeUpstream, models_file: Path, search: FakeSearch
) -> Iterator[VedikaServer]:
    db_url, data_dir = backend
    env = search_env(search) | voice_env(upstream)
    with serving(data_dir, upstream, models_file, db=db_url, **env) as srv:
        yield srv


@pytest.fixture
async def api(server: VedikaServer) -> AsyncIterator[Api]:
    async with Api(server.url) as client:
        yield client


@pytest.fixture
async def other(server: VedikaServer) -> AsyncIterator[Api]:
    """A second device, for ownership checks."""
    async with Api(server.url) as client:
        yield client
