"""Process lifecycle: SIGKILL mid-answer is reaped at restart; SIGTERM drains."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.conftest import server_env
from tests.fakes.upstream import fake_reply
from tests.support.client import Api, Socket, assert_invariants, chunks_of, text_of
from tests.support.server import VedikaServer


def _server(tmp_path: Path, upstream, models_file, **extra: str) -> VedikaServer:
    env = server_env(
        f"sqlite+aiosqlite:///{tmp_path}/v.db", tmp_path, upstream, models_file, **extra
    )
    return VedikaServer(env, log_path=tmp_path / "server.log")


async def test_sigkill_mid_answer_is_interrupted_after_restart(
    tmp_path, upstream, models_file
) -> None:
    srv = _server(tmp_path, upstream, models_file).start()
    port = srv.port
    async with Api(srv.url) as api:
        async with Socket(srv.ws_url) as ws:
            await ws.send(
                routeKey="stream_chat",
                message="long slow answer",
                model_id="fake-slow",
                session_id=api.session_id,
            )
            first = await ws.until_terminal(limit=4)
        cid, mid = first[0]["conversation_id"], first[0]["message_id"]
        srv.stop(signal.SIGKILL)
        srv = _server(tmp_path, upstream, models_file)
        srv.port = port
        srv.start()
        try:
            stored = await api.wait_status(cid, mid, timeout=5)
            assert stored["status"] == "interrupted"
            # The partial text flushed before the kill is kept, and is a prefix of what
            # was streamed (flushes are periodic, never per chunk).
            assert text_of(first).startswith(stored["content"])
            async with Socket(srv.ws_url) as ws:
                await ws.send(
                    routeKey="stream_chat", message_id=mid, resume_from=4, session_id=api.session_id
                )
                rest = await ws.until_terminal()
            err = assert_invariants(rest, first_chunk=5, expect_start=False)
            assert err["type"] == "stream_error" and err["code"] == "interrupted"
            assert err["retryable"] is True and chunks_of(rest) == []
        finally:
            srv.stop()


async def test_sigterm_lets_the_answer_finish(tmp_path, upstream, models_file) -> None:
    srv = _server(tmp_path, upstream, models_file, VEDIKA_DRAIN_SECONDS="15").start()
    port = srv.port
    async with Api(srv.url) as api:
        start = await api.start("finish before you go", model_id="fake-steady")
        code = srv.stop(signal.SIGTERM)
        # uvicorn re-raises the signal after its graceful shutdown: -15 or 0 are both clean.
        assert code in (0, -signal.SIGTERM)
        assert '"vedika.stopped"' in (tmp_path / "server.log").read_text()
        srv = _server(tmp_path, upstream, models_file)
        srv.port = port
        srv.start()
        try:
            stored = await api.wait_status(start["conversation_id"], start["message_id"])
            assert stored["status"] == "complete"
            assert stored["content"] == "".join(fake_reply("fake-steady", "finish before you go"))
        finally:
            srv.stop()


async def test_sigterm_past_the_drain_stores_interrupted(tmp_path, upstream, models_file) -> None:
    srv = _server(tmp_path, upstream, models_file, VEDIKA_DRAIN_SECONDS="0.5").start()
    port = srv.port
    async with Api(srv.url) as api:
        start = await api.start("too slow to wait for", model_id="fake-slow")
        srv.stop(signal.SIGTERM)
        srv = _server(tmp_path, upstream, models_file)
        srv.port = port
        srv.start()
        try:
            stored = await api.wait_status(start["conversation_id"], start["message_id"])
            assert stored["status"] == "interrupted"
            assert stored["error_code"] == "interrupted"
        finally:
            srv.stop()
