"""OpenAI-compatible chat completions: OpenAI, vLLM, Ollama, llama.cpp, LM Studio, ...

Streams `/chat/completions` with a lean SSE reader and one orjson parse per event.
With tools, `tools` is sent and the streamed `delta.tool_calls` fragments (an index,
then the id and name, then the arguments in pieces) are put together and handed on
as complete calls when the model finishes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from vedika.errors import ProviderBadResponse
from vedika.models.providers.base import (
    Delta,
    GenerationRequest,
    Provider,
    ToolCall,
    has_tool_messages,
    parse_arguments,
    register,
)
from vedika.models.providers.errors_map import cut_off, from_status, from_transport, garbled
from vedika.models.providers.sse import sse_events
from vedika.models.transport import TransportError

_DONE = b"[DONE]"


@register
class OpenAICompatible(Provider):
    kind = "openai"
    supports_tools = True

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream"}
        if self.endpoint.api_key:
            headers["Authorization"] = f"Bearer {self.endpoint.api_key}"
        return headers

    async def stream(self, req: GenerationRequest) -> AsyncIterator[Delta]:
        name = self.endpoint.name
        tools = bool(req.tools)
        wire = tools or has_tool_messages(req.messages)
        body: dict[str, Any] = {
            "model": req.model,
            "messages": _wire_messages(req.messages) if wire else req.messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.parameters,
                    },
                }
                for t in req.tools
            ]
            if req.tool_choice:
                body["tool_choice"] = req.tool_choice
        calls: dict[int, dict[str, Any]] = {}
        if req.max_tokens:
            body["max_tokens"] = req.max_tokens
        if req.temperature is not None:
            body["temperature"] = req.temperature
        url = f"{self.endpoint.base_url}/chat/completions"
        finished = False
        try:
            async with self.client.stream(
                "POST",
                url,
                body=orjson.dumps(body),
                headers={**self._headers(), "Content-Type": "application/json"},
                connect=self.timeouts.connect,
                idle=self.timeouts.idle,
            ) as resp:
                if resp.status != 200:
                    raw = await resp.read()
                    raise from_status(name, resp.status, raw, resp.headers.get("retry-after"))
                async for _event, data in sse_events(resp.chunks()):
                    if data == _DONE:
                        return
                    try:
                        obj = orjson.loads(data)
                    except orjson.JSONDecodeError:
                        raise garbled(name) from None
                    if not isinstance(obj, dict):
                        raise garbled(name)
                    if "error" in obj:
                        err = obj["error"]
                        msg = err.get("message") if isinstance(err, dict) else str(err)
                        raise ProviderBadResponse(
                            f"The model provider {name} reported an error mid-answer "
                            f"({str(msg)[:200]!r})."
                        )
                    if tools:
                        _collect_calls(obj, calls)
                    delta = _delta(obj)
                    if delta is not None:
                        if delta.finish_reason:
                            finished = True
                            if calls:
                                yield Delta(tool_calls=_assemble(calls))
                                delta.finish_reason = "tool_calls"
                                calls = {}
                        yield delta
        except TransportError as exc:
            raise from_transport(name, exc) from None
        if not finished:
            raise cut_off(name)

    async def list_models(self) -> list[str]:
        doc = await self.client.get_json(
            f"{self.endpoint.base_url}/models", headers=self._headers(), timeout=5.0
        )
        data = doc.get("data", []) if isinstance(doc, dict) else []
        return [str(m["id"]) for m in data if isinstance(m, dict) and "id" in m]


def _delta(obj: dict[str, Any]) -> Delta | None:
    usage = obj.get("usage")
    choices = obj.get("choices") or ()
    text = ""
    finish = None
    if choices:
        choice = choices[0]
        if not isinstance(choice, dict):
            return None
        piece = choice.get("delta") or {}
        text = (piece.get("content") or "") if isinstance(piece, dict) else ""
        finish = choice.get("finish_reason")
    if not text and finish is None and not usage:
        return None
    delta = Delta(text=text, finish_reason=finish)
    if isinstance(usage, dict):
        delta.input_tokens = usage.get("prompt_tokens")
        delta.output_tokens = usage.get("completion_tokens")
    return delta


def _wire_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The neutral message shape (base.GenerationRequest) in OpenAI's words."""
    out: list[dict[str, Any]] = []
    for m in messages:
        if m["role"] == "tool":
            out.append({"role": "tool", "tool_call_id": m["tool_call_id"], "content": m["content"]})
        elif m.get("tool_calls"):
            out.append(
                {
                    "role": "assistant",
                    "content": m.get("content") or None,
                    "tool_calls": [
                        {
                            "id": c.id,
                            "type": "function",
                            "function": {
                                "name": c.name,
                                "arguments": c.bad_arguments or orjson.dumps(c.arguments).decode(),
                            },
                        }
                        for c in m["tool_calls"]
                    ],
                }
            )
        else:
            out.append({"role": m["role"], "content": m["content"]})
    return out


def _collect_calls(obj: dict[str, Any], calls: dict[int, dict[str, Any]]) -> None:
    """Add this event's tool-call fragments to `calls` (by the index the model gives)."""
    choices = obj.get("choices") or ()
    if not choices or not isinstance(choices[0], dict):
        return
    piece = choices[0].get("delta")
    fragments = piece.get("tool_calls") if isinstance(piece, dict) else None
    if not isinstance(fragments, list):
        return
    for frag in fragments:
        if not isinstance(frag, dict):
            continue
        index = frag.get("index", len(calls))
        call = calls.setdefault(index if isinstance(index, int) else len(calls), {"args": []})
        if frag.get("id"):
            call["id"] = str(frag["id"])
        fn = frag.get("function") or {}
        if isinstance(fn, dict):
            if fn.get("name"):
                call["name"] = call.get("name", "") + str(fn["name"])
            args = fn.get("arguments")
            if isinstance(args, dict):  # some servers send the whole object at once
                call["args"] = [orjson.dumps(args).decode()]
            elif args:
                call["args"].append(str(args))


def _assemble(calls: dict[int, dict[str, Any]]) -> list[ToolCall]:
    out = []
    for n, (_index, call) in enumerate(sorted(calls.items())):
        arguments, bad = parse_arguments("".join(call["args"]))
        out.append(
            ToolCall(
                id=call.get("id") or f"call_{n}",
                name=call.get("name", ""),
                arguments=arguments,
                bad_arguments=bad,
            )
        )
    return out
