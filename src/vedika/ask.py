"""`vedika ask "question"`: ask a Vedika server from the terminal (issue 19; docs/api.md).

The key comes from `VEDIKA_API_KEY`. Files given with `--file` are uploaded first
(`POST /files`) and attached. The answer streams over the socket (`/ws`): rendered as
Markdown with `rich` when stdout is a terminal, written as plain text as it arrives when
piped. When the connection drops, it reconnects and resumes after the last chunk it
printed (the protocol's `resume_from`), so no text is lost or doubled; a question sent
before its ids came back is sent again with the same `client_message_id`, which the
server answers with the same turn. The citations are printed at the end.

Exit codes: 0 answered; 1 the answer failed; 2 usage (no key, a file missing);
3 no coins left; 4 the key was refused; 5 the server could not be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

OK, FAILED, USAGE, NO_COINS, REFUSED, UNREACHABLE = 0, 1, 2, 3, 4, 5
RECONNECT_SECONDS = 60.0  # how long to keep trying after a drop
_KEY_REFUSED = {"invalid_api_key", "api_key_revoked", "api_key_expired", "unauthorized"}


class AskError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Answer:
    """What the stream has given so far."""

    conversation_id: str | None = None
    message_id: str | None = None
    last_chunk: int = 0
    text: list[str] = field(default_factory=list)
    citations: list[dict[str, Any]] = field(default_factory=list)
    model: str | None = None


class Output:
    """Plain text as it arrives (piped), or Markdown redrawn live (a terminal)."""

    def __init__(self, out: TextIO, rich: bool) -> None:
        self.out = out
        self.live: Any = None
        self.console: Any = None
        if rich:
            from rich.console import Console
            from rich.live import Live
            from rich.markdown import Markdown

            self._markdown = Markdown
            self.console = Console(file=out)
            self.live = Live(
                Markdown(""), console=self.console, refresh_per_second=12, transient=False
            )
            self.live.start()

    def write(self, answer: Answer, piece: str) -> None:
        if self.live is not None:
            self.live.update(self._markdown("".join(answer.text)))
        else:
            self.out.write(piece)
            self.out.flush()

    def finish(self, answer: Answer) -> None:
        if self.live is not None:
            self.live.update(self._markdown("".join(answer.text)))
            self.live.stop()
        else:
            self.out.write("\n")
        if answer.citations:
            lines = ["", "Sources:"]
            for c in answer.citations:
                where = c.get("url") or c.get("file_id") or ""
                lines.append(
                    f"[{c.get('index')}] {c.get('title', '')}" + (f" {where}" if where else "")
                )
            text = "\n".join(lines) + "\n"
            if self.console is not None:
                self.console.print(text, markup=False, highlight=False, end="")
            else:
                self.out.write(text)
        self.out.flush()

    def abort(self) -> None:
        if self.live is not None:
            self.live.stop()


def _headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def upload(url: str, key: str, paths: list[Path]) -> list[str]:
    """Upload the files (one request, all or nothing); their ids."""
    if not paths:
        return []
    for path in paths:
        if not path.is_file():
            raise AskError(f"No such file: {path}", USAGE)
    files = [("files", (p.name, p.read_bytes())) for p in paths]
    try:
        async with httpx.AsyncClient(base_url=url, timeout=120) as http:
            r = await http.post("/files", files=files, headers=_headers(key))
    except httpx.HTTPError as exc:
        raise AskError(f"Could not reach {url}: {exc}", UNREACHABLE) from None
    if r.status_code == 401:
        raise AskError(_message(r), REFUSED)
    if r.status_code != 201:
        raise AskError(f"The upload was refused: {_message(r)}", FAILED)
    return [f["file_id"] for f in r.json()["files"]]


def _message(r: httpx.Response) -> str:
    try:
        body = r.json()
    except ValueError:
        return f"HTTP {r.status_code}"
    return str(body.get("message") or body.get("error") or r.status_code)


def ws_url(url: str) -> str:
    return url.rstrip("/").replace("http", "ws", 1) + "/ws"


async def ask(
    url: str,
    key: str,
    question: str,
    *,
    model: str = "best",
    mode: str = "search",
    web: bool = False,
    attachments: list[str] | None = None,
    output: Output,
) -> Answer:
    """Stream one answer, reconnecting and resuming on drops, to its end."""
    answer = Answer()
    request: dict[str, Any] = {
        "routeKey": "stream_chat",
        "message": question,
        "model_id": model,
        "mode": mode,
        "client_message_id": f"ask-{uuid.uuid4()}",
    }
    if web:
        request["sources"] = ["web"]
    if attachments:
        request["attachments"] = attachments
    deadline: float | None = None
    delay = 0.2
    loop = asyncio.get_running_loop()
    while True:
        try:
            async with websockets.connect(
                ws_url(url), additional_headers=_headers(key), max_size=2**22, open_timeout=10
            ) as ws:
                deadline, delay = None, 0.2
                if answer.message_id:
                    await ws.send(
                        json.dumps(
                            {
                                "routeKey": "stream_chat",
                                "conversation_id": answer.conversation_id,
                                "message_id": answer.message_id,
                                "resume_from": answer.last_chunk,
                            }
                        )
                    )
                else:
                    await ws.send(json.dumps(request))
                if await _read(ws, answer, output):
                    return answer
        except InvalidStatus as exc:
            if exc.response.status_code in (401, 403):
                raise AskError(
                    "The server refused the API key (unknown, revoked or expired).", REFUSED
                ) from None
            raise AskError(f"The server refused the connection: {exc}", UNREACHABLE) from None
        except (ConnectionClosed, OSError, TimeoutError) as exc:
            now = loop.time()
            deadline = deadline or now + RECONNECT_SECONDS
            if now >= deadline:
                raise AskError(f"Lost the connection to {url}: {exc}", UNREACHABLE) from None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


async def _read(ws: Any, answer: Answer, output: Output) -> bool:
    """Events until the terminal one (True), or the connection ends (raises)."""
    async for raw in ws:
        event = json.loads(raw)
        kind = event.get("type")
        if event.get("message_id") and kind not in ("stream_error", "credits_exhausted"):
            answer.message_id = event["message_id"]
            answer.conversation_id = event.get("conversation_id") or answer.conversation_id
        if kind == "stream_start":
            answer.model = event.get("model")
        elif kind == "sources":
            answer.citations = event.get("citations") or answer.citations
        elif kind == "content_chunk":
            if event["chunk_id"] <= answer.last_chunk:
                continue  # already printed before the connection dropped
            answer.last_chunk = event["chunk_id"]
            answer.text.append(event["content"])
            output.write(answer, event["content"])
        elif kind == "stream_complete":
            answer.citations = event.get("citations") or answer.citations
            full = event.get("full_response")
            if isinstance(full, str) and full != "".join(answer.text):
                # what was stored is the answer: print what is missing (never seen in
                # practice, a last guard against a lost chunk)
                seen = "".join(answer.text)
                if full.startswith(seen):
                    answer.text.append(full[len(seen) :])
                    output.write(answer, full[len(seen) :])
            return True
        elif kind == "stream_error":
            code = REFUSED if event.get("code") in _KEY_REFUSED else FAILED
            raise AskError(event.get("error") or "The answer failed.", code)
        elif kind == "credits_exhausted":
            raise AskError(event.get("message") or "No Vedika coins left today.", NO_COINS)
    raise ConnectionClosed(None, None)


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "ask", help="ask a Vedika server; the answer streams to the terminal (VEDIKA_API_KEY)"
    )
    p.add_argument("question")
    p.add_argument(
        "--url",
        default=os.environ.get("VEDIKA_URL", "http://127.0.0.1:8000"),
        help="the server (default: $VEDIKA_URL or http://127.0.0.1:8000)",
    )
    p.add_argument("--model", default="best", help="a model id, or best (default)")
    p.add_argument("--web", action="store_true", help="search the web for this question")
    p.add_argument(
        "--file", action="append", default=[], type=Path, help="upload and attach (repeatable)"
    )
    p.add_argument("--mode", choices=["search", "research", "agents"], default="search")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    key = os.environ.get("VEDIKA_API_KEY", "").strip()
    if not key:
        print(
            "vedika ask: set VEDIKA_API_KEY to an API key (create one with POST /auth/api-keys).",
            file=sys.stderr,
        )
        return USAGE
    output = Output(sys.stdout, rich=sys.stdout.isatty())
    try:
        answer = asyncio.run(_main(args, key, output))
    except AskError as exc:
        output.abort()
        print(f"\nvedika ask: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        output.abort()
        return 130
    output.finish(answer)
    return OK


async def _main(args: argparse.Namespace, key: str, output: Output) -> Answer:
    url = args.url.rstrip("/")
    ids = await upload(url, key, list(args.file))
    return await ask(
        url,
        key,
        args.question,
        model=args.model,
        mode=args.mode,
        web=args.web,
        attachments=ids,
        output=output,
    )
