"""A real nginx in front of Vedika instances, configured from docs/deployment.md.

The configuration is the one the deployment guide gives users, read out of the page:
only the lines marked `# INSTANCE 1`, `# INSTANCE 2` and `# LISTEN` are changed (the
instances' addresses and the listen address), so the guide and the tests cannot drift.
nginx runs as a child process (`daemon off`), as the current user, with its own prefix,
pid file, logs and temp directories in a directory of the test's.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.support.server import ROOT, free_port

DEPLOYMENT_MD = ROOT / "docs" / "deployment.md"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def documented_config() -> str:
    """The ```nginx block of the `## nginx` section of docs/deployment.md, verbatim."""
    page = DEPLOYMENT_MD.read_text()
    section = page[page.index("\n## nginx\n") :]
    match = re.search(r"```nginx\n(.*?)```", section, re.S)
    assert match, "docs/deployment.md: no ```nginx block under `## nginx`"
    return match.group(1)


def _replace_marked(config: str, mark: str, line: str) -> str:
    """Replace the one line that ends with `# <mark>` by `line` (same indentation)."""
    pattern = re.compile(rf"^([ \t]*)\S[^\n]*#[ \t]*{re.escape(mark)}[ \t]*$", re.M)
    found = pattern.findall(config)
    assert len(found) == 1, f"docs/deployment.md: {len(found)} lines marked `# {mark}`"
    return pattern.sub(lambda m: f"{m.group(1)}{line}", config)


def proxy_config(upstreams: list[str], listen: str) -> str:
    """The documented configuration with the test's addresses: `upstreams` are the two
    instances' `host:port`, `listen` the proxy's."""
    config = documented_config()
    assert len(upstreams) == 2, upstreams
    for n, address in enumerate(upstreams, start=1):
        line = next(x for x in config.splitlines() if x.rstrip().endswith(f"# INSTANCE {n}"))
        options = line.split("#")[0].strip().rstrip(";").split()[2:]  # after `server host`
        config = _replace_marked(
            config, f"INSTANCE {n}", f"server {' '.join([address, *options])};"
        )
    return _replace_marked(config, "LISTEN", f"listen {listen};")


class Nginx:
    """nginx on a free port of 127.0.0.1 in front of `upstreams` (`host:port` each)."""

    def __init__(self, prefix: Path, upstreams: list[str]) -> None:
        self.prefix = prefix
        self.upstreams = upstreams
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def error_log(self) -> Path:
        return self.prefix / "error.log"

    def config(self) -> str:
        p = self.prefix
        temp = "\n".join(
            f"    {kind}_temp_path {p / 'temp' / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        # As root, nginx would run its workers as `nobody`: keep them as this user.
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
        site = proxy_config(self.upstreams, f"127.0.0.1:{self.port}")
        return (
            f"{user}daemon off;\nworker_processes 1;\npid {p / 'nginx.pid'};\n"
            f"error_log {self.error_log} info;\n"
            "events { worker_connections 4096; }\n"
            f"http {{\n    access_log {p / 'access.log'};\n{temp}\n\n{site}}}\n"
        )

    def start(self, timeout: float = 10.0) -> Nginx:
        (self.prefix / "temp").mkdir(parents=True, exist_ok=True)
        conf = self.prefix / "nginx.conf"
        conf.write_text(self.config())
        args = [NGINX, "-p", str(self.prefix), "-e", str(self.error_log), "-c", str(conf)]
        check = subprocess.run([*args, "-t"], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nginx did not listen in time: {self.log_tail()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # fast shutdown: open sockets are closed
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def log_tail(self, lines: int = 20) -> str:
        if not self.error_log.exists():
            return ""
        return "\n".join(self.error_log.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> Nginx:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
