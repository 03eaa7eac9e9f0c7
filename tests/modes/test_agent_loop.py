"""The agent loop in-process, with a scripted provider (a fake, over no network) and a
real store: limits on time, tool output and steps, a tool that crashes, an operator's
own tool, and VEDIKA_AGENT_TOOLS."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from vedika import protocol as p
from vedika.chat.turns import Turn
from vedika.errors import ProviderBadResponse
from vedika.models.catalogue import ModelInfo
from vedika.models.providers import Delta, GenerationRequest, Provider, ToolCall
from vedika.models.providers.base import Timeouts
from vedika.modes import ModeEnv, get_mode
from vedika.modes.tools import Tool, ToolContext, ToolError, ToolRegistry
from vedika.settings import Settings
from vedika.store.engine import Store, make_engine, migrate


class Scripted(Provider):
    """Calls `tool` with `args` while tools may be called, then answers "done"."""

    kind = "scripted"
    supports_tools = True

    def __init__(self, tool: str, args: dict[str, Any], calls_per_round: int = 1) -> None:
        super().__init__(None, None, Timeouts())  # type: ignore[arg-type]
        self.tool, self.args, self.per_round = tool, args, calls_per_round
        self.requests: list[GenerationRequest] = []

    async def stream(self, req: GenerationRequest) -> AsyncIterator[Delta]:
        self.requests.append(req)
        if req.tools and req.tool_choice != "none":
            n = len(self.requests)
            calls = [
                ToolCall(id=f"c{n}-{i}", name=self.tool, arguments=dict(self.args))
                for i in range(self.per_round)
            ]
            yield Delta(tool_calls=calls)
            yield Delta(finish_reason="tool_calls", input_tokens=10, output_tokens=2)
            return
        yield Delta(text="done")
        yield Delta(finish_reason="stop", input_tokens=10, output_tokens=1)


class Models:
    def __init__(self, provider: Provider) -> None:
        self.provider = provider

    def provider_for(self, model: ModelInfo) -> Provider:
        return self.provider


class Written:
    """What a mode wrote (the generation's side of `Answer`)."""

    def __init__(self, turn: Turn) -> None:
        self.turn = turn
        self.citations: list[p.Citation] = []
        self.finish_reason: str | None = None
        self.prefetched = None  # no model call was sent before the turn was stored
        self.parts: list[str] = []
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.tokens = [0, 0]

    def write(self, text: str) -> None:
        self.parts.append(text)

    def text(self) -> str:
        return "".join(self.parts)

    def add_usage(self, input_tokens: int | None, output_tokens: int | None) -> None:
        self.tokens[0] += input_tokens or 0
        self.tokens[1] += output_tokens or 0

    def set_citations(self, citations: list[p.Citation]) -> None:
        self.citations = citations

    def step(self, cls: type[p.Event], **fields: Any) -> None:
        self.events.append((cls.__struct_config__.tag, fields))  # type: ignore[attr-defined]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [f for t, f in self.events if t == kind]


class Sleepy(Tool):
    name = "sleepy"
    description = "Sleeps."

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> str:
        await asyncio.sleep(30)
        return "woke"


class Chatty(Tool):
    name = "chatty"
    description = "Says a lot."

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> str:
        return "word " * 2000


class Broken(Tool):
    name = "broken"
    description = "Crashes."

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> str:
        raise RuntimeError("/secret/path/in/a/traceback")


class Weather(Tool):
    """An operator's tool."""

    name = "weather"
    description = "Today's weather."
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    }

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> str:
        if args.get("city") != "Orsk":
            raise ToolError("Only Orsk has weather here.")
        return f"Sunny in Orsk, for device {ctx.device_id}."


TOOLS = ToolRegistry({t.name: t for t in (Sleepy(), Chatty(), Broken(), Weather())})


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    url = f"sqlite+aiosqlite:///{tmp_path}/v.db"
    await asyncio.to_thread(migrate, url)
    s = Store(make_engine(url))
    yield s
    await s.close()


async def agent(
    store: Store, provider: Scripted, tools: ToolRegistry = TOOLS, **settings: Any
) -> Written:
    model = ModelInfo(id="m", name="Scripted", endpoint="x", upstream_id="m")
    turn = Turn(
        conversation_id="c1",
        user_message_id="u1",
        message_id="a1",
        device_id="dev-1",
        model=model,
        routing=None,  # type: ignore[arg-type]
        balance=None,  # type: ignore[arg-type]
        coins_charged=0,
        transaction_id=None,
        created_conversation=True,
        replayed=False,
        text="what now?",
        mode="agents",
    )
    env = ModeEnv(
        store=store,
        models=Models(provider),  # type: ignore[arg-type]
        settings=Settings(_env_file=None, **settings),  # type: ignore[call-arg]
        sources=None,
        tools=tools,
    )
    answer = Written(turn)
    await get_mode("agents").run(answer, env)
    return answer


async def test_time_limits_stop_tools_and_ask_for_an_answer(store: Store) -> None:
    provider = Scripted("sleepy", {})
    answer = await agent(store, provider, agent_tool_timeout=0.2, agent_timeout=0.5)
    results = answer.of("tool_result")
    assert results and all(not r["ok"] for r in results)
    assert all("took longer than 0.2 s" in r["content"] for r in results)
    last = provider.requests[-1]
    assert last.tool_choice == "none" and "the time for tools is up" in last.messages[0]["content"]
    assert answer.text() == "done"


async def test_tool_output_is_cut_for_the_model_and_the_event(store: Store) -> None:
    provider = Scripted("chatty", {})
    answer = await agent(store, provider, agent_tool_output_chars=500, agent_max_steps=1)
    (result,) = answer.of("tool_result")
    assert result["ok"] and result["truncated"] and len(result["content"]) == 1500
    tool_message = next(m for m in provider.requests[-1].messages if m["role"] == "tool")
    assert tool_message["content"].endswith("[… cut at 500 characters]")
    assert len(tool_message["content"]) < 600


async def test_step_limit_counts_every_call(store: Store) -> None:
    provider = Scripted("weather", {"city": "Orsk"}, calls_per_round=3)
    answer = await agent(store, provider, agent_max_steps=4)
    results = answer.of("tool_result")
    assert [r["step"] for r in results] == [1, 2, 3, 4, 5, 6]
    assert [r["ok"] for r in results] == [True] * 4 + [False] * 2
    assert "limit of 4 tool calls" in results[4]["content"]
    assert results[0]["content"] == "Sunny in Orsk, for device dev-1."
    assert len(provider.requests) == 3  # two rounds of calls, then the answer
    assert "the limit of 4 tool calls is reached" in provider.requests[-1].messages[0]["content"]
    assert answer.tokens == [30, 5]


async def test_a_crashing_tool_is_a_result_not_a_failure(store: Store) -> None:
    answer = await agent(store, Scripted("broken", {}), agent_max_steps=1)
    (result,) = answer.of("tool_result")
    assert result == {
        "call_id": "c1-0",
        "name": "broken",
        "ok": False,
        "content": "The tool failed unexpectedly.",
        "step": 1,
        "truncated": False,
    }
    assert answer.text() == "done"


async def test_operator_tools_and_the_allow_list(store: Store) -> None:
    provider = Scripted("weather", {"city": "Paris"})
    answer = await agent(store, provider, agent_max_steps=1, agent_tools=["weather"])
    assert [t.name for t in provider.requests[0].tools] == ["weather"]
    assert provider.requests[0].tools[0].parameters["required"] == ["city"]
    (result,) = answer.of("tool_result")
    assert result["content"] == "Only Orsk has weather here." and not result["ok"]
    tool_message = next(m for m in provider.requests[-1].messages if m["role"] == "tool")
    assert tool_message["content"] == "Error: Only Orsk has weather here."
    assert tool_message["is_error"] is True


async def test_no_tools_enabled_means_a_plain_answer(store: Store) -> None:
    provider = Scripted("weather", {})
    answer = await agent(store, provider, agent_tools=["nothing-by-this-name"])
    assert not answer.events and not provider.requests[0].tools
    assert answer.text().startswith("_Agents mode lets a model call tools")
    assert "no tools are enabled on this server" in answer.text()


class RefusesTools(Scripted):
    """A server that answers 400 when it is sent `tools` (a model without tool use)."""

    async def stream(self, req: GenerationRequest) -> AsyncIterator[Delta]:
        self.requests.append(req)
        if req.tools:
            raise ProviderBadResponse(
                "The model provider x rejected the request (400).",
                details={"upstream_status": 400},
            )
        yield Delta(text="plain")
        yield Delta(finish_reason="stop")


async def test_a_server_refusing_tools_gets_a_plain_answer(store: Store) -> None:
    provider = RefusesTools("weather", {})
    answer = await agent(store, provider)
    assert answer.text().startswith("_Agents mode lets a model call tools")
    assert "Scripted refused the tools here" in answer.text()
    assert answer.text().endswith("plain") and not answer.events
    assert [bool(r.tools) for r in provider.requests] == [True, False]
