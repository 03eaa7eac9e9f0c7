"""Run a real `vedika serve` process on a free port, for system tests.

The one way to have a server in a test is a context manager: `serving(...)` (the
usual test settings, tests/conftest.py's fake upstream and models file) or
`started(env)` (an environment of the test's own); both stop the server on the way
out, whatever the test did to it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from tests.fakes.upstream import FakeUpstream

ROOT = Path(__file__).resolve().parents[2]

# Every server log a test run has written to, for the tail a failing test prints
# (tests/conftest.py): CI keeps only the test output, not the servers' files.
LOGS: set[Path] = set()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class VedikaServer:
    def __init__(
        self,
        env: dict[str, str],
        port: int | None = None,
        log_path: Path | None = None,
        args: tuple[str, ...] = (),
    ) -> None:
        self.env = env
        self.args = args
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = log_path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self, timeout: float = 30.0) -> VedikaServer:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("VEDIKA_", "OPENAI_", "ANTHROPIC_", "OLLAMA_"))
        }
        env.update(self.env)
        if self.log_path:
            LOGS.add(self.log_path)
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vedika.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                *self.args,
            ],
            cwd=str(ROOT),
            env=env,
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vedika serve exited with {self.proc.returncode}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("vedika serve did not become healthy in time")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode
        self.proc = None
        return code


def sqlite_url(path: Path) -> str:
    """The database URL of a SQLite file."""
    return f"sqlite+aiosqlite:///{path}"


def server_env(
    db_url: str, data_dir: Path, upstream: FakeUpstream, models_file: Path, **extra: str
) -> dict[str, str]:
    """The test settings: the fake upstream, the test models, quick timers, no limits."""
    env = {
        "VEDIKA_DATABASE_URL": db_url,
        "VEDIKA_DATA_DIR": str(data_dir),
        "OPENAI_BASE_URL": upstream.base_url,
        "VEDIKA_MODELS_FILE": str(models_file),
        "VEDIKA_OLLAMA_AUTODETECT": "false",
        "VEDIKA_UPSTREAM_IDLE_TIMEOUT": "1.5",
        "VEDIKA_FLUSH_SECONDS": "0.3",
        "VEDIKA_REAPER_INTERVAL": "0.5",
        "VEDIKA_HEARTBEAT_STALE_SECONDS": "10",
        "VEDIKA_LOG_LEVEL": "warning",
        # Tests open many sessions and turns from one address; limits get their own tests.
        "VEDIKA_RATE_SESSIONS_PER_MINUTE": "100000",
        "VEDIKA_RATE_MESSAGES_PER_MINUTE": "100000",
        "VEDIKA_MAX_CONCURRENT_ANSWERS": "0",
        # Every server of the suite shares one PostgreSQL (max_connections 100), the
        # shards' side by side: at the defaults (10 + 20 + 4 each) two instances under
        # 100 clients each, beside the other shard's, ran it out ("too many clients
        # already": a rolling restart behind nginx, a turn in test_scale, in CI). Sized
        # as docs/deployment.md tells operators: 5 + 5 + 4 each, so six at once fit; a
        # request that finds its pool full waits for a connection. SQLite ignores them.
        "VEDIKA_DB_POOL_SIZE": "5",
        "VEDIKA_DB_MAX_OVERFLOW": "5",
    }
    env.update(extra)
    return env


@contextmanager
def started(
    env: dict[str, str],
    *,
    log_path: Path | None = None,
    port: int | None = None,
    args: tuple[str, ...] = (),
) -> Iterator[VedikaServer]:
    """A healthy `vedika serve` with exactly `env`, stopped (SIGTERM) on the way out; a
    test may stop it itself, or stop and start it again on its port."""
    srv = VedikaServer(env, port=port, log_path=log_path, args=args).start()
    try:
        yield srv
    finally:
        srv.stop()


@contextmanager
def serving(
    data_dir: Path,
    upstream: FakeUpstream,
    models_file: Path,
    *,
    db: str | None = None,
    log: str = "server.log",
    port: int | None = None,
    args: tuple[str, ...] = (),
    **extra: str,
) -> Iterator[VedikaServer]:
    """`started` with server_env(...) + `extra`: data and the log (`log`) in `data_dir`,
    the database `db` (a SQLite file `data_dir/v.db` unless given)."""
    env = server_env(db or sqlite_url(data_dir / "v.db"), data_dir, upstream, models_file, **extra)
    with started(env, log_path=data_dir / log, port=port, args=args) as srv:
        yield srv


def log_sizes() -> dict[Path, int]:
    """Where each server log ends now: the mark `log_tails` reads on from."""
    return {path: path.stat().st_size for path in LOGS if path.exists()}


def log_tails(marks: dict[Path, int], lines: int = 40) -> list[tuple[str, str]]:
    """The last `lines` lines each server log gained since `marks` (a log begun since
    then from its start), titled by the log's path: what a failing test prints."""
    out = []
    for path in sorted(LOGS):
        if not path.exists():
            continue
        with path.open("rb") as f:
            f.seek(marks.get(path, 0))
            gained = f.read().decode(errors="replace").splitlines()
        if gained:
            out.append((f"server log {path}", "\n".join(gained[-lines:])))
    return out
