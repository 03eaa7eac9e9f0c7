"""Fake LLM upstream for tests and benchmarks (a test fixture, never product code).

It speaks real HTTP on loopback (Starlette + uvicorn) and is scripted by model name. Start it
as a subprocess::

    python -m tests.fakes.upstream --host 127.0.0.1 --port 0 [--delay-ms 20]

With ``--port 0`` a free port is bound; once connections are accepted exactly one line
``READY http://127.0.0.1:<port>`` is printed (and flushed) on stdout. From tests, use
:class:`FakeUpstream` (subprocess + READY handshake) and :func:`fake_reply` (the exact tokens
streamed for a model and prompt).

Endpoints
---------
``GET  /v1/models``            OpenAI list of :data:`MODELS` (Anthropic shape if the request
                               carries an ``anthropic-version`` header).
``POST /v1/chat/completions``  OpenAI Chat Completions, ``stream`` true or false.
``POST /v1/messages``          Anthropic Messages API, ``stream`` true or false.
``GET  /_fake/requests``       Every body received on the two chat endpoints, oldest first.
                               Each entry is the JSON body plus ``authorization`` (the
                               Authorization header or null), ``_path`` and ``_headers`` (all
                               request headers, lower-case names).
``POST /_fake/reset``          Clears the recorded requests.
``GET  /_fake/health``         ``{"ok": true}``.
``POST /v1/audio/transcriptions``, ``POST /v1/audio/speech``
                               OpenAI-compatible audio, scripted by model name: see
                               :mod:`tests.fakes.audio`.

No auth is required anywhere.

Model scripting
---------------
The model id is ``<name>[@<ms>]``: the optional ``@<ms>`` suffix overrides the per-token delay
(``fake-steady@5`` = 5 ms per token, ``fake-slow@0`` = no delay). The requested id is echoed
back verbatim in the ``model`` fields. Pacing: each token is preceded by ``sleep(delay)``;
the role chunk / ``message_start`` is sent immediately after the headers.

Text: the "prompt" is the text of the last ``user`` message (string content, or the ``text``
parts of list content joined with a space). The standard reply is
``"Answer to: " + <prompt words joined by single spaces> + ". " + SENTENCE``, streamed as
``["Answer", " to", ":", " ", w1, " w2", ..., ".", " ", "This", " is", ...]``.

==================  ========================================================================
model               what is sent (OpenAI / Anthropic alike unless noted)
==================  ========================================================================
fake-steady         the standard reply at the default delay (``--delay-ms``, default 20 ms)
fake-fast           same, delay 0
fake-short          ``["Yes", "."]`` at once, then the normal ending (a turn's cheapest answer,
                    for the benchmark of new turns)
fake-slow           same, 200 ms per token
fake-long           exactly 400 tokens: the standard head, then SENTENCE repeated (for a
                    prompt of fewer than 394 words)
fake-cut            role chunk / message_start, 5 tokens, then the connection is closed with
                    the chunked body unfinished (no finish_reason, no [DONE]); clients see
                    ``httpx.RemoteProtocolError`` (incomplete chunked read). Non-stream: the
                    headers announce the full Content-Length, half the JSON is sent, then the
                    connection is closed.
fake-eof            role chunk / message_start, 5 tokens, then the body ends cleanly: no
                    finish_reason chunk, no usage, no ``[DONE]`` (Anthropic: no
                    content_block_stop / message_delta / message_stop). Non-stream: a complete
                    JSON with those 5 tokens and ``finish_reason`` / ``stop_reason`` null.
fake-500            HTTP 500 with an error JSON, before any token
fake-429            HTTP 429, header ``Retry-After: 7``, error JSON
fake-hang           HTTP 200 headers, then nothing until the client goes away (max 1 hour)
fake-hang-mid       role chunk / message_start, 3 tokens, then nothing (as fake-hang)
fake-malformed      role chunk, 3 tokens, then the line ``data: {not json`` + blank line
                    (Anthropic: ``event: content_block_delta`` + ``data: {not json``), then
                    the rest of the standard reply and the normal ending ([DONE] etc.).
                    A client that skips the bad event gets ``fake_reply()`` in full.
                    Non-stream: HTTP 200, content-type JSON, body ``{not json``.
fake-comments       the standard reply, but the stream starts with ``: ping\\n\\n`` and every
                    event is followed by ``: keep-alive\\n\\n`` and a lone ``\\n``, each sent as
                    its own write.
fake-error-event    HTTP 200, role chunk, 3 tokens, then
                    ``data: {"error": {"message": "upstream exploded", "type": "server_error"}}``
                    and the body ends (Anthropic: ``event: error`` with
                    ``{"type": "error", "error": {"type": "api_error", "message":
                    "upstream exploded"}}``). Non-stream: HTTP 200 whose JSON is that error.
fake-late-end       the standard reply, but the chunked body's end (its last, empty chunk)
                    comes LATE_END_SECONDS after ``[DONE]``: an upstream whose last write
                    travels apart
fake-xss            fixed markdown reply containing the payloads in :data:`XSS_PAYLOADS`
                    (see :data:`XSS_TEXT`), tokenised so that tags are split across tokens
fake-markdown       fixed reply (:data:`MARKDOWN_TEXT`): heading, bullet list, table, fenced
                    python block, link to https://example.com
fake-agent*,        scripted tool calls and research plans: see :mod:`tests.fakes.modes`
fake-research*      (the reply depends on the conversation: tool results so far, whether
                    tools may be called, whether a plan is asked for). Streams only; a
                    non-stream request gets the text part of the reply.
fake-<anything>     any other id starting with ``fake-`` behaves like fake-steady
anything else       HTTP 404, OpenAI error with code ``model_not_found`` (Anthropic:
                    ``not_found_error``)
==================  ========================================================================

Usage numbers: ``prompt_tokens`` / ``input_tokens`` = number of whitespace-separated words over
the text of all messages (plus the top-level ``system`` of Anthropic requests);
``completion_tokens`` / ``output_tokens`` = number of tokens streamed. OpenAI streams add a
final ``choices: []`` chunk with ``usage`` only when ``stream_options.include_usage`` is true
(and then every other chunk carries ``"usage": null``, like the real API). Anthropic's
``message_start`` carries ``output_tokens: 1`` as the real API does; the final count is in
``message_delta``. Non-stream replies are delayed by ``delay * tokens`` in total.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import httpx
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tests.fakes import audio as fake_audio
from tests.fakes import modes as fake_modes

__all__ = [
    "CUT_AFTER",
    "DEFAULT_DELAY_MS",
    "EOF_AFTER",
    "ERROR_EVENT_AFTER",
    "HANG_MID_AFTER",
    "LONG_TOKENS",
    "MALFORMED_AFTER",
    "MARKDOWN_TEXT",
    "MODELS",
    "SENTENCE",
    "SLOW_DELAY_MS",
    "XSS_PAYLOADS",
    "XSS_TEXT",
    "FakeUpstream",
    "create_app",
    "fake_reply",
    "main",
    "model_delay_ms",
    "split_model",
]

DEFAULT_DELAY_MS = 20.0
SLOW_DELAY_MS = 200.0
SCRIPTED_SLOW_DELAY_MS = 60.0  # fake-research-slow, fake-agent-slow
LONG_TOKENS = 400
CUT_AFTER = 5
EOF_AFTER = 5
HANG_MID_AFTER = 3
MALFORMED_AFTER = 3
ERROR_EVENT_AFTER = 3
HANG_SECONDS = 3600.0
LATE_END_SECONDS = 0.05
RETRY_AFTER_SECONDS = 7

MODELS: tuple[str, ...] = (
    "fake-steady",
    "fake-fast",
    "fake-short",
    "fake-slow",
    "fake-long",
    "fake-cut",
    "fake-eof",
    "fake-500",
    "fake-429",
    "fake-hang",
    "fake-hang-mid",
    "fake-cut-end",
    "fake-hang-end",
    "fake-malformed",
    "fake-comments",
    "fake-error-event",
    "fake-xss",
    "fake-markdown",
    # conversation-scripted models (tests/fakes/modes.py); listed last so that `best`
    # keeps choosing among the models above as it always did
    "fake-agent",
    "fake-agent-loop",
    "fake-agent-fail",
    "fake-research",
    "fake-research-list",
    "fake-research-junk",
    "fake-research-slow",
    "fake-agent-slow",
    # last, as a variant of the standard reply that `best` need not know
    "fake-late-end",
)

SENTENCE = (
    "This is a deterministic reply from the fake upstream used by Vedika tests,"
    " streamed one token at a time."
)

XSS_PAYLOADS: tuple[str, ...] = (
    "<script>window.__xss=1</script>",
    '<img src=x onerror="window.__xss=1">',
    "[click](javascript:window.__xss=1)",
    '<svg onload="window.__xss=1">',
    '<iframe srcdoc="<script>parent.__xss=1</script>">',
)

XSS_TEXT = (
    "Here is **bold** text before the payloads.\n\n"
    f"{XSS_PAYLOADS[0]}\n\n"
    f"An image {XSS_PAYLOADS[1]} and a {XSS_PAYLOADS[2]} link in one paragraph.\n\n"
    f"- a list item with {XSS_PAYLOADS[3]} inside\n\n"
    f"{XSS_PAYLOADS[4]}\n\n"
    "Normal words after the payloads, nothing to see here."
)

MARKDOWN_TEXT = (
    "## Fake markdown reply\n\n"
    "Here is a list:\n\n"
    "- first item\n"
    "- second item with `inline code`\n"
    "- third item\n\n"
    "| Name | Value |\n"
    "| --- | --- |\n"
    "| alpha | 1 |\n"
    "| beta | 2 |\n\n"
    "```python\n"
    "def greet(name: str) -> str:\n"
    '    return f"Hello, {name}!"\n'
    "```\n\n"
    "See [the example site](https://example.com) for more."
)


# --------------------------------------------------------------------------------------------
# Scripting (pure)
# --------------------------------------------------------------------------------------------


def _tokenize_text(text: str) -> tuple[str, ...]:
    """Split into tokens of ``<leading whitespace><non-whitespace run>``; joins back exactly."""
    tokens = tuple(re.findall(r"\s*\S+", text))
    assert "".join(tokens) == text, "fixed texts must not end with whitespace"
    return tokens


_HEAD_TOKENS: tuple[str, ...] = ("Answer", " to", ":", " ")
_DOT_TOKENS: tuple[str, ...] = (".", " ")
_SENTENCE_TOKENS = _tokenize_text(SENTENCE)
_SENTENCE_REPEAT = (" " + _SENTENCE_TOKENS[0], *_SENTENCE_TOKENS[1:])
_XSS_TOKENS = _tokenize_text(XSS_TEXT)
_MARKDOWN_TOKENS = _tokenize_text(MARKDOWN_TEXT)

# base model -> number of tokens streamed before the scripted failure
_TRUNCATE = {
    "fake-cut": CUT_AFTER,
    "fake-eof": EOF_AFTER,
    "fake-hang-mid": HANG_MID_AFTER,
    "fake-error-event": ERROR_EVENT_AFTER,
}
_NO_TOKENS = frozenset({"fake-500", "fake-429", "fake-hang"})


def split_model(model: str) -> tuple[str, float | None]:
    """``"fake-steady@5"`` -> ``("fake-steady", 5.0)``; no/invalid suffix -> delay None."""
    base, _, suffix = model.partition("@")
    if not suffix:
        return base, None
    try:
        delay = float(suffix)
    except ValueError:
        return base, None
    return base, max(delay, 0.0)


def model_delay_ms(model: str, default_ms: float = DEFAULT_DELAY_MS) -> float:
    """Per-token delay in ms for ``model`` (suffix override, else fast=0, slow=200,
    research-slow and agent-slow 60, default)."""
    base, override = split_model(model)
    if override is not None:
        return override
    if base in ("fake-fast", "fake-short"):
        return 0.0
    if base == "fake-slow":
        return SLOW_DELAY_MS
    if base in ("fake-research-slow", "fake-agent-slow"):
        return SCRIPTED_SLOW_DELAY_MS
    return float(default_ms)


def _full_tokens(base: str, prompt: str) -> list[str]:
    if base == "fake-xss":
        return list(_XSS_TOKENS)
    if base == "fake-markdown":
        return list(_MARKDOWN_TOKENS)
    if base == "fake-short":
        return ["Yes", "."]
    words = prompt.split()
    head = [*_HEAD_TOKENS, *words[:1], *(" " + w for w in words[1:]), *_DOT_TOKENS]
    if base == "fake-long":
        fill = max(LONG_TOKENS - len(head), 0)
        body = itertools.islice(
            itertools.chain(_SENTENCE_TOKENS, itertools.cycle(_SENTENCE_REPEAT)), fill
        )
        return [*head, *body]
    return [*head, *_SENTENCE_TOKENS]


def fake_reply(model: str, prompt: str) -> list[str]:
    """Exact text tokens the fake streams for ``model`` (``@<ms>`` suffix allowed) and ``prompt``
    (the last user message's text). Deterministic and pure.

    Truncating models return only what is actually streamed (fake-cut/eof: 5 tokens,
    fake-hang-mid/error-event: 3); fake-500/429/hang and non-``fake-`` models return ``[]``.
    fake-malformed returns the full reply (the bad line carries no token).
    """
    base, _ = split_model(model)
    if not base.startswith("fake-") or base in _NO_TOKENS:
        return []
    tokens = _full_tokens(base, prompt)
    limit = _TRUNCATE.get(base)
    return tokens if limit is None else tokens[:limit]


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return " ".join(parts)
    return ""


def _last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return _content_text(message.get("content"))
    return ""


def _count_words(messages: Iterable[Any], system: Any = None) -> int:
    total = len(_content_text(system).split())
    for message in messages:
        if isinstance(message, dict):
            total += len(_content_text(message.get("content")).split())
    return total


# --------------------------------------------------------------------------------------------
# Wire encoding: a request becomes a list of ops (bytes to send, float seconds to sleep,
# or one of the two terminal sentinels below), pre-encoded before the first byte is sent.
# --------------------------------------------------------------------------------------------

_CUT = object()  # return without finishing the body: uvicorn closes the connection
_HANG = object()  # wait for the client to go away (or server shutdown), then as _CUT

_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
]
_JSON_HEADERS = [(b"content-type", b"application/json")]
_DONE = b"data: [DONE]\n\n"
_MALFORMED_OPENAI = b"data: {not json\n\n"
_MALFORMED_ANTHROPIC = b"event: content_block_delta\ndata: {not json\n\n"
_ERROR_JSON_OPENAI = orjson.dumps(
    {"error": {"message": "upstream exploded", "type": "server_error"}}
)
_ERROR_JSON_ANTHROPIC = orjson.dumps(
    {"type": "error", "error": {"type": "api_error", "message": "upstream exploded"}}
)
_ERROR_EVENT_OPENAI = b"data: " + _ERROR_JSON_OPENAI + b"\n\n"
_ERROR_EVENT_ANTHROPIC = b"event: error\ndata: " + _ERROR_JSON_ANTHROPIC + b"\n\n"
_PING_COMMENT = b": ping\n\n"
_KEEPALIVE = (b": keep-alive\n\n", b"\n")

_counter = itertools.count(1)


class _Encoded:
    """Pre-encoded pieces of one reply in one wire format."""

    __slots__ = ("error_event", "head", "malformed", "tail", "tokens")

    def __init__(
        self,
        head: list[bytes],
        tokens: list[bytes],
        tail: list[bytes],
        malformed: bytes,
        error_event: bytes,
    ) -> None:
        self.head = head
        self.tokens = tokens
        self.tail = tail
        self.malformed = malformed
        self.error_event = error_event


def _encode_openai(
    model: str, tokens: list[str], prompt_tokens: int, include_usage: bool
) -> _Encoded:
    n = next(_counter)
    prefix = (
        b'data: {"id":"chatcmpl-fake-%d","object":"chat.completion.chunk","created":%d,"model":'
        % (n, int(time.time()))
        + orjson.dumps(model)
        + b',"choices":[{"index":0,"delta":'
    )
    end = b',"logprobs":null,"finish_reason":null}]' + (
        b',"usage":null}\n\n' if include_usage else b"}\n\n"
    )
    head = [prefix + b'{"role":"assistant","content":""}' + end]
    body = [prefix + b'{"content":' + orjson.dumps(t) + b"}" + end for t in tokens]
    stop = b'{},"logprobs":null,"finish_reason":"stop"}]' + (
        b',"usage":null}\n\n' if include_usage else b"}\n\n"
    )
    tail = [prefix + stop]
    if include_usage:
        usage = {
            "id": f"chatcmpl-fake-{n}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(tokens),
                "total_tokens": prompt_tokens + len(tokens),
            },
        }
        tail.append(b"data: " + orjson.dumps(usage) + b"\n\n")
    tail.append(_DONE)
    return _Encoded(head, body, tail, _MALFORMED_OPENAI, _ERROR_EVENT_OPENAI)


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _encode_anthropic(model: str, tokens: list[str], input_tokens: int) -> _Encoded:
    msg_id = f"msg_fake_{next(_counter)}"
    head = [
        _sse(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": msg_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": input_tokens, "output_tokens": 1},
                },
            },
        ),
        _sse(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        _sse("ping", {"type": "ping"}),
    ]
    prefix = (
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
        b'"delta":{"type":"text_delta","text":'
    )
    body = [prefix + orjson.dumps(t) + b"}}\n\n" for t in tokens]
    tail = [
        _sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": len(tokens)},
            },
        ),
        _sse("message_stop", {"type": "message_stop"}),
    ]
    return _Encoded(head, body, tail, _MALFORMED_ANTHROPIC, _ERROR_EVENT_ANTHROPIC)


def _stream_ops(base: str, enc: _Encoded, delay: float) -> list[Any]:
    """Ops for a streaming reply of scripted model ``base`` (error models handled earlier)."""
    if base == "fake-hang":
        return [_HANG]
    ops: list[Any] = list(enc.head)
    limit = _TRUNCATE.get(base)
    tokens = enc.tokens if limit is None else enc.tokens[:limit]
    comments = base == "fake-comments"
    for i, chunk in enumerate(tokens):
        if i == MALFORMED_AFTER and base == "fake-malformed":
            ops.append(enc.malformed)
        ops.append(delay)
        ops.append(chunk)
    if base in ("fake-cut", "fake-cut-end"):  # -end: every token, then the cut
        ops.append(_CUT)
    elif base in ("fake-hang-mid", "fake-hang-end"):
        ops.append(_HANG)
    elif base == "fake-error-event":
        ops.append(enc.error_event)
    elif base != "fake-eof":
        ops.extend(enc.tail)
    if base == "fake-late-end":
        ops.append(LATE_END_SECONDS)  # the body's end well after its last event
    if comments:
        spaced: list[Any] = [_PING_COMMENT]
        for op in ops:
            spaced.append(op)
            if isinstance(op, bytes):
                spaced.extend(_KEEPALIVE)
        ops = spaced
    return ops


def _text_tokens(text: str) -> list[str]:
    return re.findall(r"\s*\S+", text)


def _fragments(args: dict[str, Any] | str) -> list[str]:
    """A call's arguments as JSON text, in three pieces (clients must join them)."""
    raw = args if isinstance(args, str) else orjson.dumps(args).decode()
    third = max(len(raw) // 3, 1)
    return [p for p in (raw[:third], raw[third : 2 * third], raw[2 * third :]) if p]


def _openai_scripted(
    model: str, reply: fake_modes.Reply, prompt_tokens: int, include_usage: bool, delay: float
) -> list[Any]:
    n = next(_counter)

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        obj: dict[str, Any] = {
            "id": f"chatcmpl-fake-{n}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            obj["usage"] = None
        return b"data: " + orjson.dumps(obj) + b"\n\n"

    ops: list[Any] = [chunk({"role": "assistant", "content": ""})]
    tokens = _text_tokens(reply.text)
    for token in tokens:
        ops += [delay, chunk({"content": token})]
    pieces = 0
    for i, (name, args) in enumerate(reply.calls):
        call_id = f"call_{n}_{i}"
        head = {"index": i, "id": call_id, "type": "function"}
        ops += [
            delay,
            chunk({"tool_calls": [{**head, "function": {"name": name, "arguments": ""}}]}),
        ]
        for frag in _fragments(args):
            pieces += 1
            ops += [delay, chunk({"tool_calls": [{"index": i, "function": {"arguments": frag}}]})]
    ops.append(chunk({}, "tool_calls" if reply.calls else "stop"))
    if include_usage:
        completion = len(tokens) + pieces
        usage = {
            "id": f"chatcmpl-fake-{n}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion,
                "total_tokens": prompt_tokens + completion,
            },
        }
        ops.append(b"data: " + orjson.dumps(usage) + b"\n\n")
    ops.append(_DONE)
    return ops


def _anthropic_scripted(
    model: str, reply: fake_modes.Reply, input_tokens: int, delay: float
) -> list[Any]:
    msg_id = f"msg_fake_{next(_counter)}"
    start = {
        "type": "message_start",
        "message": {
            "id": msg_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": 1},
        },
    }
    ops: list[Any] = [_sse("message_start", start)]
    index = 0
    tokens = _text_tokens(reply.text)
    if tokens:
        block = {"type": "text", "text": ""}
        ops.append(
            _sse(
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": block},
            )
        )
        for token in tokens:
            delta = {"type": "text_delta", "text": token}
            ops += [
                delay,
                _sse(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": 0, "delta": delta},
                ),
            ]
        ops.append(_sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
        index = 1
    pieces = 0
    for i, (name, args) in enumerate(reply.calls, start=index):
        block = {"type": "tool_use", "id": f"toolu_{msg_id}_{i}", "name": name, "input": {}}
        ops += [
            delay,
            _sse(
                "content_block_start",
                {"type": "content_block_start", "index": i, "content_block": block},
            ),
        ]
        for frag in _fragments(args):
            pieces += 1
            delta = {"type": "input_json_delta", "partial_json": frag}
            ops += [
                delay,
                _sse(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": i, "delta": delta},
                ),
            ]
        ops.append(_sse("content_block_stop", {"type": "content_block_stop", "index": i}))
    stop = "tool_use" if reply.calls else "end_turn"
    ops.append(
        _sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": len(tokens) + pieces},
            },
        )
    )
    ops.append(_sse("message_stop", {"type": "message_stop"}))
    return ops


class _Scripted(Response):
    """Raw ASGI response that plays a list of ops and stops when the client disconnects."""

    def __init__(
        self,
        state: _State,
        ops: list[Any],
        status: int = 200,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        self._state = state
        self._ops = ops
        self.status_code = status
        self._start_headers = headers if headers is not None else _SSE_HEADERS
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        watcher = asyncio.ensure_future(watch())
        shutdown = self._state.shutdown
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self._start_headers,
                }
            )
            for op in self._ops:
                if watcher.done():
                    self._state.hung_up += 1
                    return
                if shutdown is not None and shutdown.is_set():
                    return
                if op.__class__ is bytes:
                    await send({"type": "http.response.body", "body": op, "more_body": True})
                elif op.__class__ is float:
                    await asyncio.sleep(op)
                elif op is _HANG:
                    await self._hang(watcher)
                    if watcher.done():
                        self._state.hung_up += 1
                    return
                elif op is _CUT:
                    return
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            watcher.cancel()

    async def _hang(self, watcher: asyncio.Future[None]) -> None:
        waiters: list[asyncio.Future[Any]] = [watcher]
        if self._state.shutdown is not None:
            waiters.append(asyncio.ensure_future(self._state.shutdown.wait()))
        try:
            await asyncio.wait(waiters, timeout=HANG_SECONDS, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters[1:]:
                w.cancel()


# --------------------------------------------------------------------------------------------
# App
# --------------------------------------------------------------------------------------------


class _State:
    def __init__(self, delay_ms: float) -> None:
        self.delay_ms = delay_ms
        self.requests: list[dict[str, Any]] = []
        self.shutdown: asyncio.Event | None = None
        self.hung_up = 0  # streams the client closed before their end


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status, headers, media_type="application/json")


def _openai_error(
    status: int,
    message: str,
    type_: str,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    return _json(
        {"error": {"message": message, "type": type_, "param": None, "code": code}}, status, headers
    )


def _anthropic_error(
    status: int, type_: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    return _json({"type": "error", "error": {"type": type_, "message": message}}, status, headers)


async def _record(state: _State, request: Request) -> Any:
    raw = await request.body()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    entry: dict[str, Any] = (
        dict(body) if isinstance(body, dict) else {"_raw": raw.decode("utf-8", "replace")}
    )
    entry["authorization"] = request.headers.get("authorization")
    entry["_path"] = request.url.path
    entry["_headers"] = dict(request.headers)
    state.requests.append(entry)
    return body


def create_app(delay_ms: float = DEFAULT_DELAY_MS) -> Starlette:
    """The ASGI app (also usable in-process, e.g. with httpx.ASGITransport for non-streams)."""
    state = _State(delay_ms)

    async def models(request: Request) -> Response:
        if "anthropic-version" in request.headers:
            listing: list[dict[str, Any]] = [
                {"type": "model", "id": m, "display_name": m, "created_at": "1970-01-01T00:00:00Z"}
                for m in MODELS
            ]
            return _json(
                {"data": listing, "has_more": False, "first_id": MODELS[0], "last_id": MODELS[-1]}
            )
        data: list[dict[str, Any]] = [
            {"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in MODELS
        ]
        return _json({"object": "list", "data": data})

    async def chat_completions(request: Request) -> Response:
        body = await _record(state, request)
        if not isinstance(body, dict):
            return _openai_error(400, "Request body is not a JSON object.", "invalid_request_error")
        model = body.get("model")
        messages = body.get("messages")
        if not isinstance(model, str) or not isinstance(messages, list):
            return _openai_error(
                400,
                "'model' (string) and 'messages' (array) are required.",
                "invalid_request_error",
            )
        base, _ = split_model(model)
        if not base.startswith("fake-"):
            return _openai_error(
                404,
                f"The model `{model}` does not exist or you do not have access to it.",
                "invalid_request_error",
                "model_not_found",
            )
        if base == "fake-500":
            return _openai_error(
                500, "The server had an error while processing your request.", "server_error"
            )
        if base == "fake-429":
            return _openai_error(
                429,
                "Rate limit reached for fake upstream. Please try again in 7s.",
                "requests",
                "rate_limit_exceeded",
                {"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        tokens = _full_tokens(base, _last_user_text(messages))
        prompt_tokens = _count_words(messages)
        delay = model_delay_ms(model, state.delay_ms) / 1000.0
        opts = body.get("stream_options")
        include_usage = isinstance(opts, dict) and bool(opts.get("include_usage"))
        if fake_modes.is_scripted(base):
            reply = fake_modes.reply(base, fake_modes.read_openai(body))
            if body.get("stream"):
                ops = _openai_scripted(model, reply, prompt_tokens, include_usage, delay)
                return _Scripted(state, ops)
            tokens = _text_tokens(reply.text)
        elif body.get("stream"):
            enc = _encode_openai(model, tokens, prompt_tokens, include_usage)
            return _Scripted(state, _stream_ops(base, enc, delay))
        return _non_stream(
            state, base, delay, tokens, _openai_message(model, prompt_tokens), _ERROR_JSON_OPENAI
        )

    async def messages(request: Request) -> Response:
        body = await _record(state, request)
        if not isinstance(body, dict):
            return _anthropic_error(400, "invalid_request_error", "Body is not a JSON object.")
        model = body.get("model")
        msgs = body.get("messages")
        if not isinstance(model, str) or not isinstance(msgs, list):
            return _anthropic_error(
                400, "invalid_request_error", "model: string and messages: array are required"
            )
        base, _ = split_model(model)
        if not base.startswith("fake-"):
            return _anthropic_error(404, "not_found_error", f"model: {model}")
        if base == "fake-500":
            return _anthropic_error(500, "api_error", "Internal server error")
        if base == "fake-429":
            return _anthropic_error(
                429,
                "rate_limit_error",
                "Rate limit reached for fake upstream.",
                {"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        tokens = _full_tokens(base, _last_user_text(msgs))
        input_tokens = _count_words(msgs, body.get("system"))
        delay = model_delay_ms(model, state.delay_ms) / 1000.0
        if fake_modes.is_scripted(base):
            reply = fake_modes.reply(base, fake_modes.read_anthropic(body))
            if body.get("stream"):
                return _Scripted(state, _anthropic_scripted(model, reply, input_tokens, delay))
            tokens = _text_tokens(reply.text)
        elif body.get("stream"):
            enc = _encode_anthropic(model, tokens, input_tokens)
            return _Scripted(state, _stream_ops(base, enc, delay))
        return _non_stream(
            state,
            base,
            delay,
            tokens,
            _anthropic_message(model, input_tokens),
            _ERROR_JSON_ANTHROPIC,
        )

    async def fake_requests(request: Request) -> Response:
        return _json(state.requests)

    async def fake_hung_up(request: Request) -> Response:
        return _json(state.hung_up)

    async def fake_reset(request: Request) -> Response:
        state.requests.clear()
        return _json({"ok": True})

    async def health(request: Request) -> Response:
        return _json({"ok": True})

    app = Starlette(
        routes=[
            Route("/v1/models", models, methods=["GET"]),
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/messages", messages, methods=["POST"]),
            Route("/_fake/requests", fake_requests, methods=["GET"]),
            Route("/_fake/hung-up", fake_hung_up, methods=["GET"]),
            Route("/_fake/reset", fake_reset, methods=["POST"]),
            Route("/_fake/health", health, methods=["GET"]),
            *fake_audio.routes(state.requests),
        ]
    )
    app.state.fake = state
    return app


def _openai_message(model: str, prompt_tokens: int) -> Any:
    def build(text: str, n: int, finished: bool) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-fake-{next(_counter)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop" if finished else None,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": n,
                "total_tokens": prompt_tokens + n,
            },
        }

    return build


def _anthropic_message(model: str, input_tokens: int) -> Any:
    def build(text: str, n: int, finished: bool) -> dict[str, Any]:
        return {
            "id": f"msg_fake_{next(_counter)}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn" if finished else None,
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": n},
        }

    return build


def _non_stream(
    state: _State, base: str, delay: float, tokens: list[str], build: Any, error_json: bytes
) -> Response:
    if base in ("fake-hang", "fake-hang-mid"):
        return _Scripted(state, [_HANG], headers=_JSON_HEADERS)
    if base == "fake-malformed":
        return _Scripted(state, [delay * len(tokens), b"{not json"], headers=_JSON_HEADERS)
    if base == "fake-error-event":
        ops = [delay * ERROR_EVENT_AFTER, error_json]
        return _Scripted(state, ops, headers=_JSON_HEADERS)
    limit = _TRUNCATE.get(base)
    sent = tokens if limit is None else tokens[:limit]
    data = orjson.dumps(build("".join(sent), len(sent), base != "fake-eof"))
    headers = [*_JSON_HEADERS, (b"content-length", str(len(data)).encode())]
    if base == "fake-cut":
        return _Scripted(state, [delay * len(sent), data[: len(data) // 2], _CUT], headers=headers)
    return _Scripted(state, [delay * len(sent), data], headers=headers)


# --------------------------------------------------------------------------------------------
# Server process
# --------------------------------------------------------------------------------------------


class _QuietIncomplete(logging.Filter):
    """fake-cut deliberately returns without completing the response; don't log that."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing response" not in record.getMessage()


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, state: _State) -> None:
        super().__init__(config)
        self._fake_state = state
        self._loop = asyncio.get_running_loop()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        event = self._fake_state.shutdown
        if event is not None:
            self._loop.call_soon_threadsafe(event.set)
        super().handle_exit(sig, frame)


def _bind(host: str, port: int) -> socket.socket:
    family, type_, proto, _, addr = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, type_, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(addr)
    sock.set_inheritable(False)
    return sock


async def _serve(host: str, port: int, delay_ms: float) -> None:
    app = create_app(delay_ms)
    state: _State = app.state.fake
    state.shutdown = asyncio.Event()
    sock = _bind(host, port)
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_keep_alive=75,
        timeout_graceful_shutdown=1,
        backlog=4096,
    )
    server = _Server(config, state)
    logging.getLogger("uvicorn.error").addFilter(_QuietIncomplete())
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task
            raise SystemExit("fake upstream failed to start")
        await asyncio.sleep(0.005)
    bound_port = sock.getsockname()[1]
    url_host = f"[{host}]" if ":" in host else host
    print(f"READY http://{url_host}:{bound_port}", flush=True)
    await task


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.upstream", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay-ms", type=float, default=DEFAULT_DELAY_MS)
    args = parser.parse_args(argv)
    loop_factory = None
    with contextlib.suppress(ImportError):
        import uvloop

        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(_serve(args.host, args.port, args.delay_ms))


# --------------------------------------------------------------------------------------------
# Test helper
# --------------------------------------------------------------------------------------------

_PROJECT_ROOT = Path(__file__).resolve().parents[2]


class FakeUpstream:
    """Runs the fake in a subprocess (current interpreter) for the duration of a test.

    >>> with FakeUpstream(delay_ms=1) as up:
    ...     url = up.base_url + "/v1/chat/completions"
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        delay_ms: float = DEFAULT_DELAY_MS,
        startup_timeout: float = 15.0,
    ) -> None:
        self.host = host
        self.port = port
        self.delay_ms = delay_ms
        self.startup_timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._base_url: str | None = None
        self._client: httpx.Client | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no ``/v1``)."""
        if self._base_url is None:
            raise RuntimeError("FakeUpstream is not started")
        return self._base_url

    @property
    def openai_base_url(self) -> str:
        """``base_url + "/v1"``, what OpenAI-style clients expect."""
        return self.base_url + "/v1"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> FakeUpstream:
        if self._proc is not None:
            raise RuntimeError("FakeUpstream already started")
        cmd = [
            sys.executable,
            "-m",
            "tests.fakes.upstream",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--delay-ms",
            str(self.delay_ms),
        ]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(_PROJECT_ROOT), env.get("PYTHONPATH", "")) if p
        )
        self._proc = subprocess.Popen(
            cmd, cwd=_PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE
        )
        lines: queue.Queue[bytes] = queue.Queue()
        stdout = self._proc.stdout
        assert stdout is not None

        def pump() -> None:  # first line to the queue, then drain so the pipe never fills
            for line in iter(stdout.readline, b""):
                lines.put(line)
            lines.put(b"")

        self._reader = threading.Thread(target=pump, name="fake-upstream-stdout", daemon=True)
        self._reader.start()
        try:
            line = lines.get(timeout=self.startup_timeout).decode().strip()
        except queue.Empty:
            self.stop()
            raise RuntimeError(
                f"fake upstream did not print READY within {self.startup_timeout} s"
            ) from None
        if not line.startswith("READY "):
            code = self._proc.poll()
            self.stop()
            raise RuntimeError(f"fake upstream failed to start (exit {code}): {line!r}")
        self._base_url = line.split(" ", 1)[1]
        self._client = httpx.Client(base_url=self._base_url, trust_env=False, timeout=10.0)
        return self

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._reader is not None:
            self._reader.join(timeout=2)
            self._reader = None
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()
        self._base_url = None

    def requests(self) -> list[dict[str, Any]]:
        """Bodies received on the chat endpoints, newest last (see module docstring)."""
        response = self._http().get("/_fake/requests")
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()
        return result

    def hung_up(self) -> int:
        """How many streams the client closed before their end."""
        response = self._http().get("/_fake/hung-up")
        response.raise_for_status()
        return int(response.json())

    def reset(self) -> None:
        self._http().post("/_fake/reset").raise_for_status()

    def _http(self) -> httpx.Client:
        if self._client is None:
            raise RuntimeError("FakeUpstream is not started")
        return self._client

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


if __name__ == "__main__":
    main()
