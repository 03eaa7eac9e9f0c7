"""A real OpenID Provider on loopback: npm `oidc-provider` (tests/support/oidc/provider.mjs,
installed by scripts/ensure-services.sh), started on a free port for a test.

Its dev interactions sign anyone in: the login typed is the subject, the email is the
login when it has an "@" (else `<login>@example.test`), verified unless the login
starts with "unverified". tests/test_oidc.py drives its forms over HTTP the way a
browser would; tests/browser/test_accounts_pages.py in Chromium.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.server import free_port

DIR = Path(__file__).resolve().parent / "oidc"
CLIENT_ID = "vedika-test"
CLIENT_SECRET = "a-test-client-secret-of-some-length"


class OidcProvider:
    def __init__(self, redirect_uris: list[str], port: int | None = None) -> None:
        self.port = port or free_port()
        self.redirect_uris = redirect_uris
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def setting(self, provider_id: str = "test", name: str = "Test ID") -> dict[str, object]:
        """One entry of VEDIKA_OIDC_PROVIDERS for this provider."""
        return {
            "id": provider_id,
            "name": name,
            "issuer": self.issuer,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        }

    def start(self, timeout: float = 30.0) -> OidcProvider:
        if not (DIR / "node_modules").is_dir():
            raise RuntimeError("run scripts/ensure-services.sh: tests/support/oidc needs npm ci")
        node = shutil.which("node") or "/usr/bin/node"
        self.proc = subprocess.Popen(
            [node, "provider.mjs", str(self.port), CLIENT_ID, CLIENT_SECRET, *self.redirect_uris],
            cwd=DIR,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"oidc-provider exited with {self.proc.returncode}")
            try:
                url = f"{self.issuer}/.well-known/openid-configuration"
                if httpx.get(url, timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("oidc-provider did not answer its discovery in time")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


@contextmanager
def oidc_provider(redirect_uris: list[str], port: int | None = None) -> Iterator[OidcProvider]:
    provider = OidcProvider(redirect_uris, port).start()
    try:
        yield provider
    finally:
        provider.stop()
