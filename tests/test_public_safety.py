"""Public-safety findings of issue 12 against a real `vedika serve` with the default
file limits (an upload cap of ~251 MB): unauthenticated memory (finding 2), refused
turns and the model (finding 4), the concurrent-answers cap under a race (finding 6).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import DATABASES, drop_pg_database, fresh_pg_database
from tests.fakes.upstream import FakeUpstream
from tests.support.client import Api, Socket
from tests.support.server import VedikaServer, serving, sqlite_url

MB = 1024 * 1024
# The finding's 240 MB: under the old upload cap (10 x 25 MB + 1 MB), which every body
# at /files got, so before the fix the server read (and parsed) them whole.
HOSTILE_BYTES = 240_000_000


@pytest.fixture(scope="module", params=DATABASES)
def public(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    upstream: FakeUpstream,
    models_file: Path,
) -> Iterator[VedikaServer]:
    """Defaults where they matter here: file limits, coins, early start, a cap of 4."""
    data_dir = tmp_path_factory.mktemp(f"public-{request.param}")
    pg = fresh_pg_database() if request.param == "postgres" else None
    db = pg or sqlite_url(data_dir / "vedika.db")
    try:
        with serving(
            data_dir, upstream, models_file, db=db, VEDIKA_MAX_CONCURRENT_ANSWERS="4"
        ) as srv:
            yield srv
    finally:
        if pg:
            drop_pg_database(pg)


def peak_rss_mb(srv: VedikaServer) -> float:
    """The server process's peak resident memory so far (VmHWM), in MiB."""
    assert srv.proc is not None
    for line in Path(f"/proc/{srv.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


async def hostile_post(
    port: int, path: str, content_type: str, size: int, *, declared: bool = True
) -> int:
    """POST with no credentials; the status the server answers with.

    Declared (`Content-Length: size`): only the headers are sent. The server must answer
    from them alone, without waiting for (or holding) the body: a server that read first
    would wait here until the test's timeout. Its refusal closes the connection, and a
    client still sending would see that as a reset, not as the status.
    Chunked: `size` bytes are sent as fast as the server takes them, until it answers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    length = f"Content-Length: {size}\r\n" if declared else "Transfer-Encoding: chunked\r\n"
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        f"{length}\r\n".encode()
    )
    piece = (b'{"a": "' + b"x" * (MB - 16) + b'", ') if content_type.endswith("json") else b"x" * MB
    status = asyncio.ensure_future(reader.readline())
    sent = 0
    if declared:
        await writer.drain()
        line = await asyncio.wait_for(status, 30)
        writer.close()
        return int(line.split()[1])
    try:
        while sent < size and not status.done():
            chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
            writer.write(chunk)
            await writer.drain()
            sent += len(piece)
        if not status.done():
            writer.write(b"0\r\n\r\n")
            await writer.drain()
    except (ConnectionError, OSError):
        pass  # the server answered and closed while we were still sending
    line = await asyncio.wait_for(status, 30)
    writer.close()
    return int(line.split()[1])


async def test_unauthenticated_bodies_do_not_take_memory(public: VedikaServer) -> None:
    """Finding 2: three concurrent unauthenticated 240 MB bodies at /files. Before: the
    upload cap applied to any body there and the session lookup parsed the JSON first
    (136 MB -> 1.53 GB RSS before the 401). Now a JSON body there gets the JSON cap."""
    before = peak_rss_mb(public)
    json_posts = [
        hostile_post(public.port, "/files", "application/json", HOSTILE_BYTES) for _ in range(3)
    ]
    assert await asyncio.gather(*json_posts) == [413, 413, 413]
    chunked = [
        hostile_post(public.port, "/files", "application/json", HOSTILE_BYTES, declared=False)
        for _ in range(3)
    ]
    assert await asyncio.gather(*chunked) == [413, 413, 413]
    # A multipart upload without a session is refused before its body is read.
    multipart = "multipart/form-data; boundary=b"
    uploads = [hostile_post(public.port, "/files", multipart, HOSTILE_BYTES) for _ in range(3)]
    assert await asyncio.gather(*uploads) == [401, 401, 401]
    after = peak_rss_mb(public)
    assert after - before < 100, f"peak RSS went from {before:.0f} to {after:.0f} MiB"
    async with httpx.AsyncClient(base_url=public.url) as h:
        assert (await h.get("/health")).status_code == 200


async def _sent_upstream(upstream: FakeUpstream, marker: str, seconds: float = 1.5) -> int:
    """How many model requests carried `marker`, after waiting `seconds` for stragglers."""
    await asyncio.sleep(seconds)
    bodies = await asyncio.to_thread(upstream.requests)
    return sum(marker in str(b.get("messages")) for b in bodies)


async def test_refused_turns_send_nothing_upstream(
    public: VedikaServer, upstream: FakeUpstream
) -> None:
    """Finding 4: a device with no coins left sends five 30,000-character messages;
    five refusals, and the model never sees one of them (before: all five reached it,
    through the early-start call)."""
    async with Api(public.url) as api, Socket(public.ws_url) as ws:
        spend = await api.http.post(
            "/ai/chat", json={"message": "spend it all", "model_id": "fake-pricey"}
        )
        assert spend.status_code == 200, spend.text
        assert (await api.balance())["vedika_coins_remaining"] < 19
        marker = f"refused-{uuid.uuid4().hex}"
        long = marker + " " + "word " * 5_990
        for _ in range(5):
            (event,) = await ws.ask(api, long, model_id="fake-pricey")
            assert event["type"] == "credits_exhausted"
        r = await api.http.post("/ai/chat/start", json={"message": long, "model_id": "fake-pricey"})
        assert r.status_code == 402
        assert await _sent_upstream(upstream, marker) == 0
        # A turn the device can pay for still goes out (early, as before).
        ok = await api.http.post(
            "/ai/chat", json={"message": f"{marker} paid", "model_id": "fake-fast"}
        )
        assert ok.status_code == 200, ok.text
        assert await _sent_upstream(upstream, f"{marker} paid", 0.2) == 1


async def test_the_concurrent_answers_cap_holds_under_a_race(
    public: VedikaServer, upstream: FakeUpstream
) -> None:
    """Finding 6: twelve concurrent starts with VEDIKA_MAX_CONCURRENT_ANSWERS=4. Before:
    all twelve were accepted (each read the count before any was stored)."""
    async with Api(public.url) as api:
        marker = f"race-{uuid.uuid4().hex}"

        async def start(i: int) -> httpx.Response:
            return await api.http.post(
                "/ai/chat/start", json={"message": f"{marker} {i}", "model_id": "fake-hang"}
            )

        results = await asyncio.gather(*(start(i) for i in range(12)))
        statuses = sorted(r.status_code for r in results)
        assert statuses == [201] * 4 + [429] * 8, statuses
        assert {r.json()["error"] for r in results if r.status_code == 429} == {"too_many_answers"}
        assert await _sent_upstream(upstream, marker, 1.0) == 4
        for r in results:
            if r.status_code == 201:
                stop = await api.http.post(
                    "/ai/chat/stop", json={"message_id": r.json()["message_id"]}
                )
                assert stop.status_code == 200, stop.text
        # With the answers stopped, the device may start again.
        again = await start(99)
        assert again.status_code == 201, again.text
        await api.http.post("/ai/chat/stop", json={"message_id": again.json()["message_id"]})
