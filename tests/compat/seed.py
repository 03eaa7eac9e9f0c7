"""Build (once, cached) and serve the original Vedika web client for the compat tests.

The client is a Next.js 15 app in /work/shared/seed-client, built by
/work/shared/tools/seed-client.sh. Its API URL is baked in at build time, so the build is
cached per (client sources, build script, API URL) outside the repository:
``${XDG_CACHE_HOME:-~/.cache}/vedika/seed-client/<key>``. A build that finished writes a
``.vedika-built`` marker; a directory without it (an interrupted build) is rebuilt.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx

SHARED = Path(os.environ.get("VEDIKA_SEED_SHARED", "/work/shared"))
SEED_SOURCE = SHARED / "seed-client"
SEED_SCRIPT = SHARED / "tools" / "seed-client.sh"
BUILT_MARKER = ".vedika-built"
# Files the build never reads: skipping them keeps the key stable and hashing fast.
SKIP_DIRS = {"node_modules", ".next", ".git"}


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vedika" / "seed-client"


def missing_tools() -> str | None:
    """Why the client cannot be built here, or None."""
    if not SEED_SOURCE.is_dir() or not SEED_SCRIPT.is_file():
        return f"no original client at {SEED_SOURCE} / {SEED_SCRIPT}"
    for tool in ("node", "npm", "npx"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/ensure-services.sh installs it)"
    return None


def build_key(api_url: str) -> str:
    """A hash of every client source file, the build script and the baked API URL."""
    digest = hashlib.sha256()
    for path in sorted(_source_files(SEED_SOURCE)):
        digest.update(str(path.relative_to(SEED_SOURCE)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    digest.update(SEED_SCRIPT.read_bytes() + b"\0")
    digest.update(api_url.encode())
    return digest.hexdigest()[:16]


def _source_files(root: Path) -> list[Path]:
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
        files.extend(Path(dirpath) / name for name in filenames)
    return files


def ensure_built(api_url: str, log: Path | None = None) -> tuple[Path, float]:
    """The built client for api_url: reused from the cache, else built (minutes).

    Returns the directory and the seconds spent building (0.0 on a cache hit)."""
    target = cache_root() / build_key(api_url)
    if (target / BUILT_MARKER).is_file():
        return target, 0.0
    target.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    result = subprocess.run(
        ["bash", str(SEED_SCRIPT), "build", str(target)],
        env={**os.environ, "SEED_API_URL": api_url, "NEXT_TELEMETRY_DISABLED": "1"},
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if log is not None:
        log.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise RuntimeError(
            f"seed-client build failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )
    (target / BUILT_MARKER).write_text(api_url + "\n")
    return target, time.monotonic() - started


class SeedClient:
    """`next start` of a built client on 127.0.0.1:port, stopped with its process group."""

    def __init__(self, directory: Path, port: int) -> None:
        self.directory = directory
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> SeedClient:
        # Not seed-client.sh start: it backgrounds `npx next start` with nohup, and we need
        # the process group to kill npx and the node server it forks, leaving nothing behind.
        # Next.js keeps the /api/models proxy's upstream answer for 5 minutes (revalidate:
        # 300) in .next/cache, which lives on in the cached build: a stale list from a
        # previous run's server must not stand in for this server's.
        shutil.rmtree(self.directory / ".next" / "cache" / "fetch-cache", ignore_errors=True)
        log = open(self.directory / "start.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            ["npx", "next", "start", "-H", "127.0.0.1", "-p", str(self.port)],
            cwd=self.directory,
            env={**os.environ, "NEXT_TELEMETRY_DISABLED": "1"},
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"next start exited with {self.proc.returncode}")
            try:
                if httpx.get(self.url, timeout=5).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"the seed client did not answer on {self.url} in {timeout}s")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the whole group (npx and the next-server it forks), SIGKILL what is left."""
        if self.proc is None:
            return
        pgid = self.proc.pid
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            if self._group_gone(pgid, timeout):
                break
        self.proc.wait(timeout)
        self.proc = None

    def _group_gone(self, pgid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None:
                self.proc.poll()  # reap the leader: a zombie would keep the group alive
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return True
            time.sleep(0.1)
        return False
