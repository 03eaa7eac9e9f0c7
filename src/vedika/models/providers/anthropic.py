"""Anthropic Messages API streaming (`/v1/messages`, `stream: true`).

With tools, `tool_use` content blocks (their input streamed as `input_json_delta`
pieces) become complete tool calls, and tool results go back as `tool_result` blocks
in a user message.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from vedika.errors import ProviderBadResponse, ProviderUnavailable
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

API_VERSION = "2023-06-01"
_STOP = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
}
DEFAULT_MODELS = ["claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1"]


@register
class Anthropic(Provider):
    kind = "anthropic"
    supports_tools = True

    def _headers(self) -> dict[str, str]:
        return {
            "x-api-key": self.endpoint.api_key or "",
            "anthropic-version": API_VERSION,
            "content-type": "application/json",
        }

    async def stream(self, req: GenerationRequest) -> AsyncIterator[Delta]:
        name = self.endpoint.name
        system = "\n\n".join(m["content"] for m in req.messages if m["role"] == "system")
        body: dict[str, Any] = {
            "model": req.model,
            "messages": _wire_messages(req.messages)
            if req.tools or has_tool_messages(req.messages)
            else [m for m in req.messages if m["role"] != "system"],
            "max_tokens": req.max_tokens or 4096,
            "stream": True,
        }
        if system:
            body["system"] = system
        if req.tools:
            body["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.parameters}
                for t in req.tools
            ]
            if req.tool_choice:
                body["tool_choice"] = {"type": req.tool_choice}
        blocks: dict[int, dict[str, Any]] = {}  # tool_use blocks by content index
        finished = False
        try:
            async with self.client.stream(
                "POST",
                f"{self.endpoint.base_url}/v1/messages",
                body=orjson.dumps(body),
                headers=self._headers(),
                connect=self.timeouts.connect,
                idle=self.timeouts.idle,
            ) as resp:
                if resp.status != 200:
                    raw = await resp.read()
                    raise from_status(name, resp.status, raw, resp.headers.get("retry-after"))
                async for _event, data in sse_events(resp.chunks()):
                    try:
                        obj = orjson.loads(data)
                    except orjson.JSONDecodeError:
                        raise garbled(name) from None
                    kind = obj.get("type") if isinstance(obj, dict) else None
                    if kind == "content_block_delta":
                        piece = obj.get("delta") or {}
                        if piece.get("type") == "text_delta" and piece.get("text"):
                            yield Delta(text=piece["text"])
                        elif piece.get("type") == "input_json_delta":
                            block = blocks.get(obj.get("index", -1))
                            if block is not None:
                                block["parts"].append(str(piece.get("partial_json") or ""))
                    elif kind == "content_block_start":
                        start = obj.get("content_block") or {}
                        if start.get("type") == "tool_use":
                            blocks[obj.get("index", len(blocks))] = {
                                "id": str(start.get("id") or f"toolu_{len(blocks)}"),
                                "name": str(start.get("name") or ""),
                                "input": start.get("input") or {},
                                "parts": [],
                            }
                    elif kind == "message_start":
                        usage = (obj.get("message") or {}).get("usage") or {}
                        yield Delta(input_tokens=usage.get("input_tokens"))
                    elif kind == "message_delta":
                        usage = obj.get("usage") or {}
                        stop = (obj.get("delta") or {}).get("stop_reason")
                        finished = finished or stop is not None
                        if stop is not None and blocks:
                            yield Delta(tool_calls=_assemble(blocks))
                            blocks = {}
                        yield Delta(
                            output_tokens=usage.get("output_tokens"),
                            finish_reason=_STOP.get(stop, "stop") if stop else None,
                        )
                    elif kind == "message_stop":
                        return
                    elif kind == "error":
                        err = obj.get("error") or {}
                        message = str(err.get("message", "unknown error"))[:200]
                        if err.get("type") == "overloaded_error":
                            raise ProviderUnavailable(f"The model provider {name} is overloaded.")
                        raise ProviderBadResponse(
                            f"The model provider {name} reported an error mid-answer ({message!r})."
                        )
        except TransportError as exc:
            raise from_transport(name, exc) from None
        if not finished:
            raise cut_off(name)

    async def list_models(self) -> list[str]:
        try:
            doc = await self.client.get_json(
                f"{self.endpoint.base_url}/v1/models", headers=self._headers(), timeout=5.0
            )
            return [str(m["id"]) for m in doc.get("data", []) if "id" in m]
        except (TransportError, AttributeError, TypeError, KeyError):
            return list(DEFAULT_MODELS)


def _wire_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The neutral message shape (base.GenerationRequest) in Anthropic's words: tool
    calls are `tool_use` blocks of the assistant, results `tool_result` blocks of one
    user message (consecutive results share it)."""
    out: list[dict[str, Any]] = []
    for m in messages:
        role = m["role"]
        if role == "system":
            continue
        if role == "tool":
            block = {
                "type": "tool_result",
                "tool_use_id": m["tool_call_id"],
                "content": m["content"],
                "is_error": bool(m.get("is_error")),
            }
            last = out[-1] if out else None
            if last and last["role"] == "user" and isinstance(last["content"], list):
                last["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
        elif m.get("tool_calls"):
            content: list[dict[str, Any]] = []
            if m.get("content"):
                content.append({"type": "text", "text": m["content"]})
            content.extend(
                {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}
                for c in m["tool_calls"]
            )
            out.append({"role": "assistant", "content": content})
        else:
            out.append({"role": role, "content": m["content"]})
    return out


def _assemble(blocks: dict[int, dict[str, Any]]) -> list[ToolCall]:
    out = []
    for _index, block in sorted(blocks.items()):
        raw = "".join(block["parts"])
        start = block["input"] if isinstance(block["input"], dict) else {}
        arguments, bad = parse_arguments(raw) if raw else (start, None)
        out.append(
            ToolCall(id=block["id"], name=block["name"], arguments=arguments, bad_arguments=bad)
        )
    return out
