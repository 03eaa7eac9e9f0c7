"""`GET /deepgram/token` for the original web client's dictation (issue 13, item 5):
a short-lived key from Deepgram's Keys API (a fake on loopback), never the operator's
key; rate-limited per address; a clear JSON error when not configured."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.fakes.deepgram import PROJECT, FakeDeepgram
from tests.fakes.upstream import FakeUpstream
from tests.support.server import serving

OPERATOR_KEY = "dg-operator-secret-0123456789"


async def test_temporary_keys_never_the_operators(
    tmp_path: Path, upstream: FakeUpstream, models_file: Path
) -> None:
    with (
        FakeDeepgram(OPERATOR_KEY) as fake,
        serving(
            tmp_path,
            upstream,
            models_file,
            VEDIKA_DEEPGRAM_API_KEY=OPERATOR_KEY,
            VEDIKA_DEEPGRAM_URL=fake.base_url,
            VEDIKA_DEEPGRAM_KEY_TTL="20",
            VEDIKA_RATE_DEEPGRAM_PER_MINUTE="3",
        ) as srv,
    ):
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as h:
            answers = [await h.get("/deepgram/token") for _ in range(4)]
    first, second = answers[0].json(), answers[1].json()
    assert answers[0].status_code == 200 and first["expires_in"] == 20
    assert first["apiKey"] in fake.issued and second["apiKey"] in fake.issued
    assert first["apiKey"] != second["apiKey"] != OPERATOR_KEY
    assert OPERATOR_KEY not in answers[0].text
    assert answers[3].status_code == 429 and answers[3].json()["error"] == "rate_limited"
    created = [r for r in fake.requests if r["method"] == "POST"]
    assert len(created) == 3 and {r["path"] for r in created} == {f"/v1/projects/{PROJECT}/keys"}
    assert all(r["body"]["time_to_live_in_seconds"] == 20 for r in created)
    assert all(r["body"]["scopes"] == ["usage:write"] for r in created)
    assert all(r["authorization"] == f"Token {OPERATOR_KEY}" for r in fake.requests)
    # the project is looked up once, not per key
    assert sum(r["path"] == "/v1/projects" for r in fake.requests) == 1


async def test_not_configured_or_refused_is_a_clear_error(
    tmp_path: Path, upstream: FakeUpstream, models_file: Path
) -> None:
    with (
        FakeDeepgram("another-key") as fake,
        serving(
            tmp_path,
            upstream,
            models_file,
            VEDIKA_DEEPGRAM_API_KEY=OPERATOR_KEY,  # Deepgram refuses it
            VEDIKA_DEEPGRAM_URL=fake.base_url,
        ) as srv,
    ):
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as h:
            refused = await h.get("/deepgram/token")
    assert refused.status_code == 502 and refused.json()["error"] == "dictation_failed"
    assert "apiKey" not in refused.json()
    with serving(tmp_path, upstream, models_file) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as h:
            off = await h.get("/deepgram/token")
    assert off.status_code == 503 and off.json()["error"] == "dictation_unavailable"
    assert "VEDIKA_DEEPGRAM_API_KEY" in off.json()["message"]
