"""Research and Agents modes through a real `vedika serve` (SQLite and PostgreSQL), the
fake upstream's scripted models (tests/fakes/modes.py) and the fake web: whole runs
over the socket, resume after a disconnect, stop, tool limits and failing tools, the
stored steps, and the offline model's honest fallbacks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import search_env
from tests.fakes.modes import EVIL_EXPRESSION, METADATA_URL, plan_questions
from tests.fakes.search import FakeSearch
from tests.fakes.upstream import FakeUpstream
from tests.support.client import Api, Socket, assert_invariants, chunks_of, text_of
from tests.support.server import VedikaServer, server_env, sqlite_url, started
from tests.test_sources_api import HANDBOOK, upload_ok

QUESTION = "Lake Veyra and the Quillfeather Festival"
STEP_TYPES = ("research_step", "tool_call", "tool_result")


def of(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == kind]


def final_steps(events: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """The last state of each research step, by number."""
    return {e["step"]: e for e in of(events, "research_step")}


async def answer_of(api: Api, events: list[dict[str, Any]]) -> dict[str, Any]:
    conv = await api.conversation(events[-1]["conversation_id"])
    return next(m for m in conv["messages"] if m["message_id"] == events[-1]["message_id"])


# ---------------------------------------------------------------- research


async def test_research_plans_searches_reads_and_writes_a_cited_report(
    server: VedikaServer, api: Api, search: FakeSearch
) -> None:
    search.reset()
    events = await api.ask(
        QUESTION,
        model_id="fake-research",
        mode="research",
        sources=["web"],
        interaction_mode="dictation",
        timeout=60,
    )
    done = assert_invariants(events)
    assert done["type"] == "stream_complete" and done["finish_reason"] == "stop"
    types = [e["type"] for e in events]
    first_chunk = types.index("content_chunk")
    # every step of the plan and the searches comes before the report's first word
    assert all(
        i < first_chunk
        for i, t in enumerate(types)
        if t == "research_step" and events[i]["phase"] != "write"
    )
    steps = final_steps(events)
    planned = plan_questions(QUESTION)
    assert sorted(steps) == [1, 2, 3, 4, 5]
    assert all(s["status"] == "done" and s["total"] == 5 for s in steps.values())
    assert steps[1]["phase"] == "plan" and steps[1]["label"] == "Planned 3 searches"
    assert [steps[n]["phase"] for n in (2, 3, 4)] == ["search"] * 3
    assert all(planned[n - 2] in steps[n]["label"] for n in (2, 3, 4))
    assert steps[5]["phase"] == "write"
    # each step is announced running, then done
    assert [e["status"] for e in of(events, "research_step") if e["step"] == 2] == [
        "running",
        "done",
    ]
    assert set(planned) <= set(search.queries())
    cites = done["citations"]
    urls = {c.get("url", "") for c in cites}
    assert any(u.endswith("/pages/lake-veyra") for u in urls)
    assert any(u.endswith("/pages/quillfeather-festival") for u in urls)
    assert [c["index"] for c in cites] == list(range(1, len(cites) + 1))
    assert len(urls) == len(cites)  # a page found by two searches keeps one number
    found = {c["index"] for n in (2, 3, 4) for c in steps[n]["citations"]}
    assert found == {c["index"] for c in cites}
    report = done["full_response"]
    assert report.startswith("## Summary") and "## Findings" in report and "## Conclusion" in report
    assert "[1]" in report and f"[{len(cites)}]" in report
    # stored: the text, the citations, the steps (final state), the modes
    stored = await answer_of(api, events)
    assert stored["content"] == report and stored["citations"] == cites
    assert stored["mode"] == "research" and stored["interaction_mode"] == "dictation"
    kept = {s["step"]: s for s in stored["steps"] if s["type"] == "research_step"}
    assert sorted(kept) == [1, 2, 3, 4, 5] and all(s["status"] == "done" for s in kept.values())
    conv = await api.conversation(events[-1]["conversation_id"])
    assert conv["messages"][0]["interaction_mode"] == "dictation"


async def test_research_plan_formats_and_fallback(
    server: VedikaServer, api: Api, search: FakeSearch
) -> None:
    search.reset()
    question = "Copper kettle care and cleaning"  # not asked before: no cached search
    events = await api.ask(question, model_id="fake-research-list", mode="research", timeout=60)
    assert_invariants(events)
    assert search.queries() == plan_questions(question)  # the web, by default
    search.reset()
    events = await api.ask(
        "Lake Veyra ferry", model_id="fake-research-junk", mode="research", timeout=60
    )
    assert_invariants(events)
    steps = final_steps(events)
    assert sorted(steps) == [1, 2, 3] and steps[1]["label"] == "Researching the question as asked"
    assert search.queries() == ["Lake Veyra ferry"]


async def test_research_in_attached_files_only(
    server: VedikaServer, api: Api, search: FakeSearch
) -> None:
    (stored,) = await upload_ok(api, HANDBOOK)
    search.reset()
    events = await api.ask(
        "Orsk Rail day pass",
        model_id="fake-research",
        mode="research",
        sources=["files"],
        attachments=[stored["file_id"]],
        timeout=60,
    )
    done = assert_invariants(events)
    assert search.queries() == []  # the web was not asked
    cites = done["citations"]
    assert cites and {c["file_id"] for c in cites} == {stored["file_id"]}
    assert all(c["title"] == "orsk-rail-handbook.pdf" and c["page"] for c in cites)
    assert "orsk-rail-handbook.pdf [1]" in done["full_response"]


async def test_research_resumes_after_a_disconnect(server: VedikaServer, api: Api) -> None:
    started = await api.start(
        QUESTION, model_id="fake-research-slow", mode="research", sources=["web"]
    )
    cid, mid = started["conversation_id"], started["message_id"]
    first = await api.ask(conversation_id=cid, limit=3, timeout=60)
    seen = chunks_of(first)[-1]["chunk_id"]
    rest = await api.ask(message_id=mid, resume_from=seen, timeout=60)
    assert_invariants(rest, first_chunk=seen + 1, expect_start=False)
    assert text_of(first) + text_of(rest) == rest[-1]["full_response"]
    assert not of(rest, "sources")  # sent before chunk 1: the client has it
    # a replay from the start has every step exactly as sent, once
    replay = await api.ask(message_id=mid, timeout=60)
    assert_invariants(replay)
    live_steps = [e for e in first + rest if e["type"] in STEP_TYPES]
    replay_steps = [e for e in replay if e["type"] in STEP_TYPES]
    assert [(e["step"], e["status"]) for e in replay_steps] == [
        (e["step"], e["status"]) for e in live_steps
    ]


async def test_stopping_research_keeps_what_was_written(server: VedikaServer, api: Api) -> None:
    started = await api.start(
        QUESTION, model_id="fake-research-slow", mode="research", sources=["web"]
    )
    async with Socket(server.ws_url) as ws:
        events = await ws.ask(api, message_id=started["message_id"], limit=2, timeout=60)
        await ws.send(
            routeKey="stop_stream", session_id=api.session_id, message_id=started["message_id"]
        )
        events += await ws.until_terminal(timeout=30)
    done = assert_invariants(events)
    assert done["finish_reason"] == "stopped" and done["full_response"] == text_of(events)
    write = final_steps(events)[5]
    assert write["phase"] == "write" and write["status"] == "stopped"
    stored = await api.wait_status(started["conversation_id"], started["message_id"])
    assert stored["status"] == "stopped" and stored["content"] == done["full_response"]
    assert any(s["type"] == "research_step" and s["status"] == "stopped" for s in stored["steps"])


# ---------------------------------------------------------------- agents


async def test_agent_searches_fetches_and_computes(server: VedikaServer, api: Api) -> None:
    question = "How deep is Lake Veyra, and what is 17 * 3?"
    events = await api.ask(
        question, model_id="fake-agent", mode="agents", interaction_mode="voice", timeout=60
    )
    done = assert_invariants(events)
    calls, results = of(events, "tool_call"), of(events, "tool_result")
    assert [c["name"] for c in calls] == ["web_search", "fetch_url", "calculator"]
    assert [c["step"] for c in calls] == [1, 2, 3] and [r["step"] for r in results] == [1, 2, 3]
    assert [r["call_id"] for r in results] == [c["call_id"] for c in calls]
    assert all(r["ok"] for r in results), results
    assert calls[0]["arguments"] == {"query": question}
    assert calls[1]["arguments"]["url"].endswith("/pages/lake-veyra")
    assert calls[2]["arguments"] == {"expression": "17 * 3"}
    assert results[2]["content"] == "17 * 3 = 51"
    assert "312 metres" in results[1]["content"]  # the page's main text, read safely
    types = [e["type"] for e in events]
    # each call comes before its result, and the result before the next call
    order = [t for t in types if t in ("tool_call", "tool_result")]
    assert order == ["tool_call", "tool_result"] * 3
    text = done["full_response"]
    assert text.startswith("Let me look that up.\n\nAgent answer to: ")
    assert text.endswith("the last one said: 17 * 3 = 51")
    assert any(c.get("url", "").endswith("/pages/lake-veyra") for c in done["citations"])
    assert of(events, "sources")  # citations announced as the tools found them
    stored = await answer_of(api, events)
    assert [s["type"] for s in stored["steps"]] == ["tool_call", "tool_result"] * 3
    assert stored["mode"] == "agents" and stored["interaction_mode"] == "voice"
    assert stored["content"] == text


async def test_agent_resumes_after_a_disconnect(server: VedikaServer, api: Api) -> None:
    started = await api.start(
        "How deep is Lake Veyra, and what is 6 * 7?", model_id="fake-agent-slow", mode="agents"
    )
    mid = started["message_id"]
    first = await api.ask(message_id=mid, until="tool_result", timeout=60)
    seen = max([c["chunk_id"] for c in chunks_of(first)], default=0)
    assert seen >= 1  # "Let me look that up." came before the first call
    rest = await api.ask(message_id=mid, resume_from=seen, timeout=60)
    done = assert_invariants(rest, first_chunk=seen + 1, expect_start=False)
    assert text_of(first) + text_of(rest) == done["full_response"]
    # steps sent after chunk `seen` may come again: clients key them by call id
    steps = {(e["type"], e["call_id"]) for e in first + rest if e["type"] in STEP_TYPES}
    calls = {e["call_id"]: e["name"] for e in first + rest if e["type"] == "tool_call"}
    assert sorted(calls.values()) == ["calculator", "fetch_url", "web_search"]
    assert steps == {(t, c) for c in calls for t in ("tool_call", "tool_result")}
    assert done["full_response"].endswith("the last one said: 6 * 7 = 42")


async def test_agent_step_limit(server: VedikaServer, api: Api) -> None:
    events = await api.ask("what time is it", model_id="fake-agent-loop", mode="agents", timeout=60)
    done = assert_invariants(events)
    calls = of(events, "tool_call")
    assert len(calls) == 8 and {c["name"] for c in calls} == {"current_time"}  # the default
    assert all(r["ok"] for r in of(events, "tool_result"))
    assert done["full_response"].endswith("I stopped after 8 tool calls.")


async def test_failing_tools_go_back_to_the_model(
    server: VedikaServer, api: Api, upstream: FakeUpstream
) -> None:
    events = await api.ask("break things", model_id="fake-agent-fail", mode="agents", timeout=60)
    done = assert_invariants(events)
    assert done["type"] == "stream_complete"
    calls, results = of(events, "tool_call"), of(events, "tool_result")
    assert [c["name"] for c in calls] == ["fetch_url", "calculator", "no_such_tool", "calculator"]
    assert calls[0]["arguments"] == {"url": METADATA_URL}
    assert calls[3]["arguments"] == {"raw": '{"expression": 6 *'}
    assert [r["ok"] for r in results] == [False] * 4
    assert "does not fetch" in results[0]["content"]
    assert "__import__" in results[1]["content"] and "allowed" in results[1]["content"]
    assert results[2]["content"].startswith("There is no tool called 'no_such_tool'")
    assert "not a JSON object" in results[3]["content"]
    assert done["full_response"].endswith("4 of 4 tool calls failed.")
    sent = [r for r in upstream.requests() if r.get("model") == "fake-agent-fail"][-1]
    tool_messages = [m for m in sent["messages"] if m["role"] == "tool"]
    assert len(tool_messages) == 4 and all(
        m["content"].startswith("Error: ") for m in tool_messages
    )
    assert EVIL_EXPRESSION not in str(sent["messages"][0])  # the system prompt stays ours


async def test_agents_with_a_model_without_tool_use_answers_plainly(
    server: VedikaServer, api: Api
) -> None:
    """fake-steady ignores tools: it answers at once, which is a complete answer."""
    events = await api.ask("hello there", model_id="fake-steady", mode="agents", timeout=60)
    done = assert_invariants(events)
    assert not of(events, "tool_call") and done["full_response"].startswith("Answer to: hello")


# ---------------------------------------------------------------- no language model


@pytest.fixture(scope="module")
def offline(
    tmp_path_factory: pytest.TempPathFactory,
    search: FakeSearch,
    upstream: FakeUpstream,
    models_file: Path,
) -> Iterator[VedikaServer]:
    """A server with no model provider (the offline answerer) and web search, whose
    hub forgets an answer as soon as it ends."""
    data = tmp_path_factory.mktemp("offline")
    env = server_env(sqlite_url(data / "v.db"), data, upstream, models_file, **search_env(search))
    for key in ("OPENAI_BASE_URL", "VEDIKA_MODELS_FILE"):
        env.pop(key)
    env["VEDIKA_OFFLINE_DELAY_MS"] = "0"
    env["VEDIKA_STREAM_RETENTION_SECONDS"] = "0"  # replays come from the store
    with started(env, log_path=data / "server.log") as srv:
        yield srv


async def test_offline_research_quotes_the_gathered_sources(offline: VedikaServer) -> None:
    async with Api(offline.url) as api:
        events = await api.ask("How deep is Lake Veyra?", mode="research", timeout=60)
    done = assert_invariants(events)
    steps = final_steps(events)
    assert sorted(steps) == [1, 2, 3] and steps[1]["label"] == "Researching the question as asked"
    assert steps[2]["citations"]
    text = done["full_response"]
    assert text.startswith("_No language model is connected")
    assert "312 metres" in text and "[1]" in text


async def test_offline_agents_say_tools_need_a_model(offline: VedikaServer) -> None:
    async with Api(offline.url) as api:
        events = await api.ask("what is 2 + 2", mode="agents", timeout=60)
    done = assert_invariants(events)
    assert not of(events, "tool_call")
    text = done["full_response"]
    assert text.startswith("_Agents mode lets a model call tools")
    assert "no language model is connected to this server" in text
    assert "OPENAI_BASE_URL" in text  # then how to connect one


async def test_steps_are_replayed_from_the_store(offline: VedikaServer) -> None:
    async with Api(offline.url) as api:
        live = await api.ask("Copper kettle care", mode="research", timeout=60)
        done = assert_invariants(live)
        mid = done["message_id"]
        replay = await api.ask(message_id=mid)
        assert_invariants(replay)
        assert [e["type"] for e in replay] == [
            "stream_start",
            "sources",
            "research_step",
            "research_step",
            "research_step",
            "content_chunk",
            "stream_complete",
        ]
        assert [(e["step"], e["status"], e["label"]) for e in of(replay, "research_step")] == [
            (n, s["status"], s["label"]) for n, s in sorted(final_steps(live).items())
        ]
        assert text_of(replay) == done["full_response"]
        last = done["total_chunks"]
        tail = await api.ask(message_id=mid, resume_from=last)
        # only the writing step ended after the last chunk
        assert [(e["type"], e.get("step")) for e in tail] == [
            ("research_step", 3),
            ("stream_complete", None),
        ]


async def test_a_stop_after_steps_were_delivered_is_not_refunded(
    server: VedikaServer, api: Api
) -> None:
    """Research steps (searches, pages read) cost the operator as much as text: a stop
    after some were delivered, before any text, keeps the charge (issue 12, finding 5)."""
    before = (await api.balance())["vedika_coins_remaining"]
    started = await api.start(
        QUESTION, model_id="fake-research-slow", mode="research", sources=["web"]
    )
    price = started["vedika_coins_used"]
    assert price >= 1
    async with Socket(server.ws_url) as ws:
        events = await ws.ask(
            api, message_id=started["message_id"], until="research_step", timeout=60
        )
        assert chunks_of(events) == []  # steps only, no text yet
        await ws.send(
            routeKey="stop_stream", session_id=api.session_id, message_id=started["message_id"]
        )
        events += await ws.until_terminal(timeout=30)
    assert events[-1]["finish_reason"] == "stopped"
    await api.wait_status(started["conversation_id"], started["message_id"])
    assert (await api.balance())["vedika_coins_remaining"] == before - price
    kinds = [t["type"] for t in (await api.http.get("/coins/transactions")).json()["transactions"]]
    assert "refund" not in kinds
