"""`vedika ask` (issue 19): the real command against a real server, the fake upstream and
the fake search; piped, in a pseudo-terminal, and through a TCP proxy that cuts the
connection mid-answer (docs/api.md)."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import search_env
from tests.fakes.search import FakeSearch
from tests.support.server import VedikaServer, serving
from tests.support.tcp_proxy import TcpProxy

VEDIKA = str(Path(sys.executable).with_name("vedika"))
QUESTION = "How deep is Lake Veyra?"


@pytest.fixture(scope="module")
def ask_server(
    tmp_path_factory: pytest.TempPathFactory, upstream, models_file, search: FakeSearch
) -> Iterator[VedikaServer]:
    data_dir = tmp_path_factory.mktemp("ask")
    with serving(
        data_dir,
        upstream,
        models_file,
        VEDIKA_RATE_LOGINS_PER_MINUTE="100000",
        **search_env(search),
    ) as srv:
        yield srv


@pytest.fixture(scope="module")
def key(ask_server: VedikaServer) -> str:
    with httpx.Client(base_url=ask_server.url) as http:
        r = http.post(
            "/auth/register",
            json={"email": f"ask-{time.monotonic_ns()}@example.org", "password": "x" * 12},
            headers={"X-Requested-With": "test"},
        )
        assert r.status_code == 201, r.text
        session = r.json()["session_id"]
        made = http.post(
            "/auth/api-keys",
            json={"name": "cli"},
            headers={"Authorization": f"Bearer {session}"},
        )
        assert made.status_code == 201, made.text
        return made.json()["key"]  # type: ignore[no-any-return]


def env_with(key: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "VEDIKA_API_KEY"}
    if key is not None:
        env["VEDIKA_API_KEY"] = key
    env["COLUMNS"], env["TERM"] = "120", "xterm-256color"
    return env


def newest_turn(srv: VedikaServer, key: str) -> list[dict[str, Any]]:
    """The newest conversation's last question and answer."""
    with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {key}"}) as http:
        cid = http.get("/ai/conversations").json()["conversations"][0]["conversation_id"]
        messages = http.get(f"/ai/conversations/{cid}").json()["messages"]
    return messages[-2:]  # type: ignore[no-any-return]


def newest_answer(srv: VedikaServer, key: str) -> dict[str, Any]:
    return newest_turn(srv, key)[1]


def test_piped_output_is_the_answer_then_its_citations(
    ask_server: VedikaServer, key: str, search: FakeSearch
) -> None:
    done = subprocess.run(
        [VEDIKA, "ask", QUESTION, "--url", ask_server.url, "--model", "fake-fast", "--web"],
        env=env_with(key),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    stored = newest_answer(ask_server, key)
    assert stored["status"] == "complete" and stored["citations"]
    lines = [f"[{c['index']}] {c['title']} {c['url']}" for c in stored["citations"]]
    assert done.stdout == stored["content"] + "\n\nSources:\n" + "\n".join(lines) + "\n"
    assert f"{search.base_url}/pages/lake-veyra" in done.stdout
    assert "\x1b[" not in done.stdout  # plain text when piped


def test_in_a_terminal_markdown_is_rendered(
    ask_server: VedikaServer, key: str, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("The heron nests at Lake Veyra are counted every spring by volunteers.\n")
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [
            VEDIKA,
            "ask",
            "When are the heron nests counted?",
            "--url",
            ask_server.url,
            "--model",
            "fake-fast",
            "--file",
            str(notes),
        ],
        env=env_with(key),
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=subprocess.PIPE,
    )
    os.close(follower)
    out = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 30)
        if not ready:
            break
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        out += data
    os.close(leader)
    assert proc.wait(30) == 0, proc.stderr.read() if proc.stderr else ""
    text = out.decode("utf-8", "replace")
    assert "\x1b[" in text  # rich drew it (a terminal gets escape codes)
    question, stored = newest_turn(ask_server, key)
    assert question["attachments"] and stored["citations"]
    assert "Sources:" in text and "notes.txt" in text
    for word in stored["content"].split()[:4]:
        assert word in text


def test_exit_codes(ask_server: VedikaServer, key: str) -> None:
    def run(args: list[str], key: str | None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [VEDIKA, "ask", *args], env=env_with(key), capture_output=True, text=True, timeout=60
        )

    assert run(["hi", "--url", ask_server.url], None).returncode == 2
    refused = run(["hi", "--url", ask_server.url], "vk_" + "B" * 43)
    assert refused.returncode == 4 and "refused" in refused.stderr
    missing = run(["hi", "--url", ask_server.url, "--file", "/no/such/file"], key)
    assert missing.returncode == 2 and "No such file" in missing.stderr
    unknown = run(["hi", "--url", ask_server.url, "--model", "no-such-model"], key)
    assert unknown.returncode == 1 and "no-such-model" in unknown.stderr


def test_a_cut_connection_resumes_with_no_text_lost_or_doubled(
    ask_server: VedikaServer, key: str
) -> None:
    proxy = TcpProxy("127.0.0.1", ask_server.port).start()
    try:
        proc = subprocess.Popen(
            [
                VEDIKA,
                "ask",
                "tell me about the herons of the lake",
                "--url",
                f"http://127.0.0.1:{proxy.port}",
                "--model",
                "fake-slow",
            ],
            env=env_with(key),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None
        head = proc.stdout.read(12)  # some of the answer has been printed
        rest: list[bytes] = []
        reader = threading.Thread(target=lambda: rest.append(proc.stdout.read()))  # type: ignore[union-attr]
        reader.start()
        proxy.cut()
        time.sleep(1.0)  # the answer goes on on the server meanwhile
        proxy.restore()
        assert proc.wait(60) == 0, proc.stderr.read() if proc.stderr else ""
        reader.join(10)
    finally:
        proxy.close()
    stored = newest_answer(ask_server, key)
    assert stored["status"] == "complete"
    assert (head + b"".join(rest)).decode() == stored["content"] + "\n"
