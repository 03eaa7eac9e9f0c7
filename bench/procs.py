"""Processes under test (fake upstream, floor, `vedika serve`, redis) and /proc readings."""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

# Settings that would throttle a load test (unknown names are ignored by Vedika).
UNTHROTTLED = {
    "VEDIKA_DAILY_CREDITS": "1000000",
    "VEDIKA_RATE_SESSIONS_PER_MINUTE": "1000000",
    "VEDIKA_RATE_MESSAGES_PER_MINUTE": "1000000",
    "VEDIKA_RATE_SOCKET_MESSAGES_PER_10S": "1000000",
    "VEDIKA_MAX_CONCURRENT_ANSWERS": "1000000",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------- cores


def cores() -> tuple[list[str], list[str], bool]:
    """(server cores, generator cores, pinned): server on core 0, the rest for the harness."""
    n = os.cpu_count() or 1
    if n < 2 or not shutil.which("taskset"):
        return [], [], False
    try:
        subprocess.run(["taskset", "-c", "0", "true"], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        return [], [], False
    return ["0"], [str(i) for i in range(1, n)], True


def pin_self(cpus: list[str]) -> None:
    if cpus:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {int(c) for c in cpus})


def _taskset(cpus: list[str]) -> list[str]:
    return ["taskset", "-c", ",".join(cpus)] if cpus else []


# ---------------------------------------------------------------- /proc


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process (not its children), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE


def loadavg() -> list[float]:
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def machine() -> dict[str, Any]:
    model = platform.processor() or "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        m = re.search(r"model name\s*:\s*(.+)", f.read())
        if m:
            model = m.group(1).strip()

    def git(*args: str) -> str:
        try:
            out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
            return out.stdout.strip()
        except OSError:
            return ""

    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "commit": git("rev-parse", "HEAD") or "unknown",
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "loadavg_start": loadavg(),
    }


# ---------------------------------------------------------------- processes


class Proc:
    """A child process, optionally pinned with taskset, that prints `READY <url>` or has
    a health URL. Stopped with SIGTERM (SIGKILL after a while)."""

    def __init__(
        self,
        name: str,
        cmd: list[str],
        *,
        cpus: list[str] | None = None,
        env: dict[str, str] | None = None,
        log: Path | None = None,
    ) -> None:
        self.name = name
        self.cmd = _taskset(cpus or []) + cmd
        self.env = env
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start_ready(self, timeout: float = 30) -> Proc:
        """Start and wait for a `READY <url>` line on stdout."""
        self.proc = subprocess.Popen(
            self.cmd,
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log_file(),
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        os.set_blocking(self.proc.stdout.fileno(), True)
        line = b""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith(b"READY "):
                self.url = line.split()[1].decode()
                return self
            if not line and self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"{self.name} did not start: {line!r} (see {self.log})")

    def start_health(self, url: str, timeout: float = 60) -> Proc:
        """Start and poll `url` until it answers 200."""
        import httpx

        self.proc = subprocess.Popen(
            self.cmd,
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file(),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} ({self.log})")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=1, trust_env=False).status_code == 200:
                    return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not become healthy ({self.log})")

    def _log_file(self) -> Any:
        if self.log is None:
            return subprocess.DEVNULL
        return open(self.log, "ab")

    def stop(self, timeout: float = 15) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def python_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("VEDIKA_", "OPENAI_", "ANTHROPIC_", "OLLAMA_"))
    }
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(extra or {})
    return env


def fake_upstream(delay_ms: float, cpus: list[str], log: Path) -> Proc:
    cmd = [sys.executable, "-m", "tests.fakes.upstream", "--port", "0", "--delay-ms", str(delay_ms)]
    return Proc(f"fake upstream {delay_ms} ms", cmd, cpus=cpus, env=python_env(), log=log)


def floor(upstream: str, cpus: list[str], log: Path, client: str | None = None) -> Proc:
    cmd = [sys.executable, "-m", "bench.floor", "--upstream", upstream]
    if client:
        cmd += ["--client", client]
    return Proc("floor relay", cmd, cpus=cpus, env=python_env(), log=log)


class Vedika(Proc):
    """`vedika serve` on a free port with the given settings."""

    def __init__(
        self, upstream: str, db_url: str, data_dir: Path, cpus: list[str], **settings: str
    ) -> None:
        self.port = free_port()
        self.db_url = db_url
        env = python_env(
            {
                "VEDIKA_DATABASE_URL": db_url,
                "VEDIKA_DATA_DIR": str(data_dir),
                "OPENAI_BASE_URL": upstream,
                "VEDIKA_OLLAMA_AUTODETECT": "false",
                "VEDIKA_LOG_LEVEL": "warning",
                **UNTHROTTLED,
                **settings,
            }
        )
        self.settings = settings
        cmd = [
            sys.executable,
            "-m",
            "vedika.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        super().__init__("vedika", cmd, cpus=cpus, env=env, log=data_dir / "server.log")

    def migrate(self) -> None:
        subprocess.run(
            [sys.executable, "-m", "vedika.cli", "migrate"],
            cwd=ROOT,
            env=self.env,
            check=True,
            capture_output=True,
        )

    def start(self) -> Vedika:
        self.url = f"http://127.0.0.1:{self.port}"
        self.start_health(self.url + "/health")
        return self


# ---------------------------------------------------------------- services


def postgres_available() -> bool:
    if not shutil.which("psql"):
        return False
    r = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-tAc", "select 1"],
        capture_output=True,
        text=True,
    )
    return r.returncode == 0


def psql(sql: str, db: str = "postgres") -> str:
    r = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-tAc", sql],
        capture_output=True,
        text=True,
        check=True,
    )
    return r.stdout.strip()


@contextlib.contextmanager
def scratch_postgres(name: str) -> Any:
    """A fresh database `name` on 127.0.0.1:5432 (dropped afterwards)."""
    psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    psql(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_commits(name: str) -> int:
    return int(psql(f"select xact_commit from pg_stat_database where datname = '{name}'") or 0)


def redis_server(cpus: list[str], log: Path) -> Proc | None:
    exe = shutil.which("redis-server")
    if not exe:
        return None
    port = free_port()
    cmd = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = Proc("redis", cmd, cpus=cpus, log=log)
    proc.proc = subprocess.Popen(
        proc.cmd, stdout=proc._log_file(), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
    )
    proc.url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return proc
        time.sleep(0.05)
    proc.stop()
    return None


async def metrics(url: str) -> dict[str, float]:
    """Counters and gauges from /metrics (label sets summed per name)."""
    import httpx

    async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
        text = (await http.get(url + "/metrics")).text
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, _, value = line.rpartition(" ")
        base = name.split("{", 1)[0]
        with contextlib.suppress(ValueError):
            out[base] = out.get(base, 0.0) + float(value)
    return out


async def sleep_until(t_ns: int) -> None:
    delay = (t_ns - time.perf_counter_ns()) / 1e9
    if delay > 0:
        await asyncio.sleep(delay)
