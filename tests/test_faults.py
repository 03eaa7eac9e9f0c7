"""Each upstream fault ends in a readable stream_error; partial text kept; coins right."""

from __future__ import annotations

import pytest

from tests.fakes.upstream import FakeUpstream, fake_reply
from tests.support.client import Api, assert_invariants, text_of
from tests.support.server import serving

# model -> (error code, chunks delivered before the fault)
FAULTS = {
    "fake-500": ("provider_unavailable", 0),
    "fake-429": ("provider_rate_limited", 0),
    "fake-hang": ("provider_timeout", 0),
    "fake-cut": ("provider_unavailable", 5),
    "fake-eof": ("provider_unavailable", 5),
    "fake-hang-mid": ("provider_timeout", 3),
    "fake-malformed": ("provider_bad_response", 3),
    "fake-error-event": ("provider_bad_response", 3),
    # At the finish: every token arrived, then the connection broke or went silent
    # before the finish. The text is kept, but the answer is not called complete.
    "fake-cut-end": ("provider_unavailable", -1),
    "fake-hang-end": ("provider_timeout", -1),
}


@pytest.mark.parametrize("model", sorted(FAULTS))
async def test_upstream_fault_ends_cleanly(server, api: Api, model: str) -> None:
    code, delivered = FAULTS[model]
    prompt = f"trigger {model}"
    before = (await api.balance())["credits_remaining"]
    events = await api.ask(prompt, model_id=model)
    err = assert_invariants(events)
    assert err["type"] == "stream_error" and err["code"] == code
    assert err["retryable"] is True
    assert err["error"].endswith((".", "!")) and "Traceback" not in err["error"]
    tokens = fake_reply(model, prompt)
    partial = "".join(tokens if delivered < 0 else tokens[:delivered])
    assert text_of(events) == partial
    stored = await api.wait_status(events[0]["conversation_id"], events[0]["message_id"])
    assert stored["status"] == "error" and stored["content"] == partial
    assert stored["error"] == err["error"]
    after = (await api.balance())["credits_remaining"]
    # Nothing delivered: the coin comes back. Something delivered: it stays spent.
    assert after == (before if delivered == 0 else before - 1)


async def test_comment_lines_and_usage_chunk_are_handled(server, api: Api) -> None:
    events = await api.ask("comments", model_id="fake-comments")
    done = assert_invariants(events)
    assert done["type"] == "stream_complete"
    assert done["full_response"] == "".join(fake_reply("fake-comments", "comments"))
    assert done["output_tokens"] == len(fake_reply("fake-comments", "comments"))
    assert done["input_tokens"] > 0


async def test_upstream_refusing_connections(tmp_path, models_file) -> None:
    """The upstream goes away after discovery: a clear error, the coin given back."""
    gone = FakeUpstream(delay_ms=0).start()
    with serving(tmp_path, gone, models_file) as srv:
        gone.stop()
        async with Api(srv.url) as api:
            events = await api.ask("anyone there?", model_id="fake-steady")
            err = assert_invariants(events)
            assert err["code"] == "provider_unavailable"
            assert err["error"] == "Could not reach the model provider openai."
            assert (await api.balance())["credits_remaining"] == 20
            r = await api.http.post(
                "/ai/chat", json={"message": "blocking?", "model_id": "fake-steady"}
            )
            assert r.status_code == 502 and r.json()["error"] == "provider_unavailable"
