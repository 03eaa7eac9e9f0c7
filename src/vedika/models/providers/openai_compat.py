"""OpenAI-compatible chat completions: OpenAI, vLLM, Ollama, llama.cpp, LM Studio, ...

Streams `/chat/completions` with a lean SSE reader and one orjson parse per event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson

from vedika.errors import ProviderBadResponse
from vedika.models.providers.base import Delta, GenerationRequest, Provider, register
from vedika.models.providers.errors_map import cut_off, from_status, from_transport, garbled
from vedika.models.providers.sse import sse_events

_DONE = b"[DONE]"


@register
class OpenAICompatible(Provider):
    kind = "openai"

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream"}
        if self.endpoint.api_key:
            headers["Authorization"] = f"Bearer {self.endpoint.api_key}"
        return headers

    def _timeout(self) -> httpx.Timeout:
        return httpx.Timeout(
            connect=self.timeouts.connect, read=self.timeouts.idle, write=30.0, pool=30.0
        )

    async def stream(self, req: GenerationRequest) -> AsyncIterator[Delta]:
        name = self.endpoint.name
        body: dict[str, Any] = {
            "model": req.model,
            "messages": req.messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
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
                content=orjson.dumps(body),
                headers={**self._headers(), "Content-Type": "application/json"},
                timeout=self._timeout(),
            ) as resp:
                if resp.status_code != 200:
                    raw = await resp.aread()
                    raise from_status(name, resp.status_code, raw, resp.headers.get("retry-after"))
                async for _event, data in sse_events(resp.aiter_raw()):
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
                    delta = _delta(obj)
                    if delta is not None:
                        if delta.finish_reason:
                            finished = True
                        yield delta
        except httpx.HTTPError as exc:
            raise from_transport(name, exc) from None
        if not finished:
            raise cut_off(name)

    async def list_models(self) -> list[str]:
        resp = await self.client.get(
            f"{self.endpoint.base_url}/models", headers=self._headers(), timeout=5.0
        )
        resp.raise_for_status()
        data = resp.json().get("data", [])
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
