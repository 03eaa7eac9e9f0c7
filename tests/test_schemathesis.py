"""Schemathesis against the live OpenAPI schema: no 5xx, no ignored auth, no accepted
invalid data. Runs the real CLI against a real `vedika serve`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import voice_env
from tests.fakes.deepgram import FakeDeepgram
from tests.support.server import serving
from tests.support.smtp import SmtpServer


def schemathesis(
    url: str, session: str, cwd: Path, *selection: str
) -> tuple[subprocess.CompletedProcess[str], str]:
    """One Schemathesis run over the server's OpenAPI document with `session`: the same
    checks and budget every time, `selection` choosing the operations. The result and
    the tail of its report (for an assertion's message)."""
    cli = Path(sys.executable).with_name("schemathesis")
    result = subprocess.run(
        [
            str(cli),
            "run",
            f"{url}/openapi.json",
            "--checks",
            "not_a_server_error,ignored_auth,negative_data_rejection,status_code_conformance",
            "-H",
            f"Authorization: Bearer {session}",
            *selection,
            "--max-examples",
            "25",
            "--seed",
            "1",
            "--request-timeout",
            "20",
            "--generation-codec",
            "utf-8",
            "--no-color",
        ],
        capture_output=True,
        cwd=cwd,
        text=True,
        timeout=600,
    )
    return result, result.stdout[-6000:] + result.stderr[-2000:]


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
        result, report = schemathesis(
            srv.url,
            session,
            tmp_path,
            "--exclude-path",
            "/ai/chat",  # blocking: waits for whole answers
        )
        assert result.returncode == 0, report
        assert " 500 " not in (tmp_path / "server.log").read_text()


# What a signed-in session may call (the account's own calls and API keys, the
# conversations and files it owns as `account@<id>`, and, as the server's first
# account, the admin API). Left out: `DELETE /auth/sessions` (sign out
# everywhere) would end the session the run is using; sign-up and sign-in (which switch
# accounts) are fuzzed by the anonymous run above.
SIGNED_IN_PATHS = (
    r"^/(auth/(me|sessions|export|account|api-keys)|ai/conversations|files|coins|admin)"
)


@pytest.mark.slow
def test_schemathesis_signed_in(tmp_path: Path, upstream, models_file) -> None:
    """The same checks as a signed-in account: register, then log in, and fuzz with that
    session, so the signed-in paths (401 without it, 404 for ids that are not its own)
    run too."""
    with serving(
        tmp_path,
        upstream,
        models_file,
        VEDIKA_RATE_LOGINS_PER_MINUTE="100000",
        VEDIKA_RATE_LOGINS_PER_ACCOUNT_HOUR="100000",
    ) as srv:
        account = {"email": "fuzz@example.org", "password": "correct horse battery staple"}
        device = httpx.post(f"{srv.url}/auth/device-session", json={}).json()["session_id"]
        registered = httpx.post(
            f"{srv.url}/auth/register",
            json=account,
            headers={"Authorization": f"Bearer {device}"},
        )
        assert registered.status_code == 201, registered.text
        login = httpx.post(
            f"{srv.url}/auth/login",
            json=account,
            headers={"Authorization": f"Bearer {registered.json()['session_id']}"},
        )
        assert login.status_code == 200, login.text
        session = login.json()["session_id"]
        bearer = {"Authorization": f"Bearer {session}"}
        seeded = httpx.post(
            f"{srv.url}/files",
            headers=bearer,
            files=[("files", ("notes.md", b"# Notes\n\nA line.\n", "text/markdown"))],
        )
        assert seeded.status_code == 201, seeded.text
        asked = httpx.post(
            f"{srv.url}/ai/chat",
            headers=bearer,
            json={"message": "a seed question", "model_id": "fake-fast"},
            timeout=30,
        )
        assert asked.status_code == 200, asked.text
        spare = httpx.post(
            f"{srv.url}/auth/login",
            json=account,
            headers={"Authorization": f"Bearer {device}"},
        )
        assert spare.status_code == 200, spare.text
        sessions = httpx.get(f"{srv.url}/auth/sessions", headers=bearer).json()["sessions"]
        handle = next(s["id"] for s in sessions if not s["current"])  # not the run's own
        other_device = httpx.post(f"{srv.url}/auth/device-session", json={}).json()
        target = httpx.post(
            f"{srv.url}/auth/register",
            json={"email": "target@example.org", "password": account["password"]},
            headers={"Authorization": f"Bearer {other_device['session_id']}"},
        )
        assert target.status_code == 201, target.text
        # The account's own ids, so the calls by id reach more than their 404 (and
        # another account for the admin calls: disabling itself would end the run).
        (tmp_path / "schemathesis.toml").write_text(
            "[parameters]\n"
            f'"path.conversation_id" = "{asked.json()["conversation_id"]}"\n'
            f'"path.file_id" = "{seeded.json()["files"][0]["file_id"]}"\n'
            f'"path.session_handle" = "{handle}"\n'
            f'"path.user_id" = "{target.json()["account"]["account_id"]}"\n'
        )
        result, report = schemathesis(
            srv.url,
            session,
            tmp_path,
            "--include-path-regex",
            SIGNED_IN_PATHS,
            "--exclude-operation-id",
            "revoke_all_sessions_auth_sessions_delete",
        )
        assert result.returncode == 0, report
        # the 5 account calls, 3 API key, 4 conversation, 4 file, 2 coin and 7 admin
        # operations
        # Every selected operation was tested (the count from the document itself, so a
        # new endpoint under these paths is fuzzed signed in without editing this).
        spec = httpx.get(f"{srv.url}/openapi.json").json()
        selected = sum(
            1
            for path, item in spec["paths"].items()
            if re.match(SIGNED_IN_PATHS, path)
            for method, op in item.items()
            if method in ("get", "post", "put", "patch", "delete")
            and op.get("operationId") != "revoke_all_sessions_auth_sessions_delete"
        )
        assert selected >= 25 and re.search(rf"Tested: {selected}\b", result.stdout), report
        assert " 500 " not in (tmp_path / "server.log").read_text()
        # The run was signed in from start to end.
        me = httpx.get(f"{srv.url}/auth/me", headers=bearer)
        assert me.status_code == 200 and me.json()["account"]["email"] == account["email"]
