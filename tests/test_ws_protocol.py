"""The socket protocol against a real server: every invariant of API.md section 3."""

from __future__ import annotations

import asyncio

from tests.fakes.upstream import fake_reply
from tests.support.client import Api, Socket, assert_invariants, chunks_of, text_of


async def test_new_turn_streams_with_all_invariants(server, api: Api) -> None:
    prompt = "what is a lighthouse"
    events = await api.ask(prompt, model_id="fake-steady", device_id=api.device_id)
    assert events[0]["type"] == "conversation_started"
    assert [e["type"] for e in events[1:3]] == ["credits_info", "stream_start"]
    done = assert_invariants(events)
    expected = "".join(fake_reply("fake-steady", prompt))
    assert done["type"] == "stream_complete"
    assert text_of(events) == done["full_response"] == expected
    assert done["total_chunks"] == len(chunks_of(events))
    assert done["finish_reason"] == "stop"
    assert done["output_tokens"] == len(fake_reply("fake-steady", prompt))  # from usage
    conv = await api.conversation(events[0]["conversation_id"])
    stored = conv["messages"][-1]
    assert stored["status"] == "complete" and stored["content"] == expected
    assert [m["role"] for m in conv["messages"]] == ["user", "assistant"]


async def test_resume_after_disconnect_gets_the_rest_exactly_once(server, api: Api) -> None:
    prompt = "tell me about tides"
    start = await api.start(prompt, model_id="fake-steady")
    cid = start["conversation_id"]
    first = await api.ask(conversation_id=cid, message_id=start["message_id"], limit=4)
    seen = chunks_of(first)
    assert [c["chunk_id"] for c in seen] == [1, 2, 3, 4]
    rest = await api.ask(conversation_id=cid, resume_from=4)
    done = assert_invariants(rest, first_chunk=5, expect_start=False)
    assert text_of(first) + text_of(rest) == done["full_response"]
    assert done["full_response"] == "".join(fake_reply("fake-steady", prompt))


async def test_closing_the_socket_does_not_stop_the_generation(server, api: Api) -> None:
    prompt = "keep going without me"
    events = await api.ask(prompt, model_id="fake-steady", limit=2)  # then closes the socket
    conversation_id = events[0]["conversation_id"]
    message_id = events[0]["message_id"]
    stored = await api.wait_status(conversation_id, message_id)
    assert stored["status"] == "complete"
    assert stored["content"] == "".join(fake_reply("fake-steady", prompt))


async def test_existing_client_flow_start_then_socket_is_one_turn_one_charge(
    server, api: Api
) -> None:
    prompt = "how do bridges stand"
    before = (await api.balance())["credits_remaining"]
    start = await api.start(prompt, model_id="fake-steady")
    assert start["status"] == "conversation_created"
    events = await api.ask(
        prompt, conversation_id=start["conversation_id"], device_id=api.device_id
    )
    done = assert_invariants(events)
    assert events[0]["message_id"] == start["message_id"]
    assert done["full_response"] == "".join(fake_reply("fake-steady", prompt))
    conv = await api.conversation(start["conversation_id"])
    assert [m["role"] for m in conv["messages"]] == ["user", "assistant"]
    assert (await api.balance())["credits_remaining"] == before - 1


async def test_follow_up_turn_sends_previous_turns_to_the_model(server, api: Api, upstream) -> None:
    first = await api.start("first question here", model_id="fake-fast")
    await api.wait_status(first["conversation_id"], first["message_id"])
    second = await api.start(
        "second question", model_id="fake-fast", conversation_id=first["conversation_id"]
    )
    assert second["status"] == "message_accepted"
    await api.wait_status(first["conversation_id"], second["message_id"])
    sent = [
        r
        for r in upstream.requests()
        if r.get("messages") and r["messages"][-1]["content"] == "second question"
    ][-1]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert sent[1]["content"] == "first question here"
    assert sent[2]["content"] == "".join(fake_reply("fake-fast", "first question here"))


async def test_ping_and_bad_messages_keep_the_socket_usable(server, api: Api) -> None:
    async with Socket(server.ws_url) as ws:
        await ws.ws.send("this is not json")
        assert (await ws.recv())["code"] == "bad_request"
        await ws.send(routeKey="dance")
        err = await ws.recv()
        assert err["type"] == "stream_error" and "routeKey" in err["error"]
        await ws.send(routeKey="stream_chat", message="   ", session_id=api.session_id)
        assert (await ws.recv())["code"] == "empty_message"
        await ws.send(routeKey="stream_chat", message="x" * 40_000, session_id=api.session_id)
        assert (await ws.recv())["code"] == "message_too_long"
        await ws.send(routeKey="stream_chat", message=123, session_id=api.session_id)
        assert (await ws.recv())["code"] == "validation_error"
        await ws.send(routeKey="stream_chat", message="hi")
        assert (await ws.recv())["code"] == "unauthorized"
        await ws.send(routeKey="ping")
        assert (await ws.recv())["type"] == "pong"


async def test_stop_keeps_partial_text_and_says_stopped(server, api: Api) -> None:
    start = await api.start("a slow one", model_id="fake-slow")
    async with Socket(server.ws_url) as ws:
        events = await ws.ask(api, message_id=start["message_id"], limit=2)
        await ws.send(
            routeKey="stop_stream", message_id=start["message_id"], session_id=api.session_id
        )
        events += await ws.until_terminal()
    done = assert_invariants(events)
    assert done["type"] == "stream_complete" and done["finish_reason"] == "stopped"
    assert done["full_response"] == text_of(events) and len(chunks_of(events)) >= 2
    stored = await api.wait_status(start["conversation_id"], start["message_id"])
    assert stored["status"] == "stopped" and stored["content"] == done["full_response"]


async def test_two_sockets_see_the_same_answer(server, api: Api) -> None:
    start = await api.start("shared view", model_id="fake-steady")
    async with Socket(server.ws_url) as a, Socket(server.ws_url) as b:
        for ws in (a, b):
            await ws.send_chat(api, message_id=start["message_id"])
        ea, eb = await asyncio.gather(a.until_terminal(), b.until_terminal())
    assert text_of(ea) == text_of(eb) == assert_invariants(ea)["full_response"]


async def test_attach_after_finish_replays_from_the_log(server, api: Api) -> None:
    start = await api.start("finished already", model_id="fake-fast")
    await api.wait_status(start["conversation_id"], start["message_id"])
    events = await api.ask(conversation_id=start["conversation_id"])
    done = assert_invariants(events)
    assert done["full_response"] == "".join(fake_reply("fake-fast", "finished already"))


async def test_two_answers_on_one_socket_each_keep_their_order(server, api: Api) -> None:
    """Frames of two answers (and a pong) share one socket with no lock between them:
    each answer's events still arrive whole and in order, and the pong comes."""
    prompts = ["first of two at once", "second of two at once"]
    async with Socket(server.ws_url) as ws:
        for prompt in prompts:
            await ws.send_chat(api, prompt, model_id="fake-steady")
        await ws.send(routeKey="ping")
        by_answer: dict[str, list[dict]] = {}
        done: set[str] = set()
        pongs = 0
        while len(done) < 2:
            event = await ws.recv()
            if event["type"] == "pong":
                pongs += 1
                continue
            by_answer.setdefault(event["message_id"], []).append(event)
            if event["type"] in ("stream_complete", "stream_error"):
                done.add(event["message_id"])
    assert pongs == 1 and len(by_answer) == 2
    texts = set()
    for events in by_answer.values():
        assert events[0]["type"] == "conversation_started"
        texts.add(assert_invariants(events[1:])["full_response"])
        assert text_of(events) in texts
    assert texts == {"".join(fake_reply("fake-steady", p)) for p in prompts}
