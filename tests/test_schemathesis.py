"""Schemathesis against the live OpenAPI schema: no 5xx, no ignored auth, no accepted
invalid data. Runs the real CLI against a real `vedika serve`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import voice_env
from tests.fakes.deepgram import FakeDeepgram
from tests.support.server import serving
from tests.support.smtp import SmtpServer


@pytest.mark.slow
def test_schemathesis(tmp_path: Path, upstream, models_file) -> None:
    # Voice, Deepgram and mail are configured (against fakes and a real SMTP server on
    # loopback): unconfigured, their calls answer 503 by design, which Schemathesis
    # counts as a server error.
    with (
        FakeDeepgram("dg-schemathesis") as deepgram,
        SmtpServer() as smtp,
        serving(
            tmp_path,
            upstream,
            models_file,
            **voice_env(upstream),
            VEDIKA_DEEPGRAM_API_KEY="dg-schemathesis",
            VEDIKA_DEEPGRAM_URL=deepgram.base_url,
            **smtp.env(),
        ) as srv,
    ):
        session = httpx.post(f"{srv.url}/auth/device-session", json={}).json()["session_id"]
        cli = Path(sys.executable).with_name("schemathesis")
        result = subprocess.run(
            [
                str(cli),
                "run",
                f"{srv.url}/openapi.json",
                "--checks",
                "not_a_server_error,ignored_auth,negative_data_rejection,status_code_conformance",
                "-H",
                f"Authorization: Bearer {session}",
                "--max-examples",
                "25",
                "--seed",
                "1",
                "--request-timeout",
                "20",
                "--exclude-path",
                "/ai/chat",  # blocking: waits for whole answers
                "--generation-codec",
                "utf-8",
                "--no-color",
            ],
            capture_output=True,
            cwd=tmp_path,
            text=True,
            timeout=600,
        )
        report = result.stdout[-6000:] + result.stderr[-2000:]
        assert result.returncode == 0, report
        assert " 500 " not in (tmp_path / "server.log").read_text()
