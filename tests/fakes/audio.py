"""Fake OpenAI-compatible audio endpoints (a test fixture), served by the fake upstream.

``POST /v1/audio/transcriptions``  multipart ``file`` + ``model`` (+ ``language``). The
    text is what follows the marker ``VEDIKA-SAY:`` in the audio bytes (up to a newline
    or the end), else ``fake transcription of <n> bytes``; ``{"text", "language": "en"}``.
    Model ``fake-whisper-fail`` answers 500.
``POST /v1/audio/speech``  JSON ``{model, input, voice, response_format}``; answers
    ``ID3`` + ``FAKE-AUDIO:<voice>:`` + the input, as ``audio/mpeg``. Model
    ``fake-tts-fail`` answers 500.

Both record what they received in the fake upstream's request log (``_path``, ``model``
and the rest, never the audio itself).
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

MARKER = b"VEDIKA-SAY:"


def transcript_of(audio: bytes) -> str:
    at = audio.find(MARKER)
    if at < 0:
        return f"fake transcription of {len(audio)} bytes"
    return audio[at + len(MARKER) :].split(b"\n", 1)[0].decode("utf-8", "replace").strip()


def _error(status: int, message: str) -> Response:
    body = {"error": {"message": message, "type": "server_error", "param": None, "code": None}}
    return Response(orjson.dumps(body), status, media_type="application/json")


def routes(log: list[dict[str, Any]]) -> list[Route]:
    async def transcriptions(request: Request) -> Response:
        form = await request.form()
        upload = form.get("file")
        model = str(form.get("model") or "")
        audio = await upload.read() if isinstance(upload, UploadFile) else b""
        log.append(
            {
                "_path": request.url.path,
                "model": model,
                "language": form.get("language"),
                "response_format": form.get("response_format"),
                "filename": upload.filename if isinstance(upload, UploadFile) else None,
                "content_type": upload.content_type if isinstance(upload, UploadFile) else None,
                "size": len(audio),
                "authorization": request.headers.get("authorization"),
            }
        )
        if model == "fake-whisper-fail":
            return _error(500, "transcription exploded")
        if not audio:
            return _error(400, "no file")
        body = {"text": transcript_of(audio), "language": "en"}
        return Response(orjson.dumps(body), media_type="application/json")

    async def speech(request: Request) -> Response:
        body = orjson.loads(await request.body())
        log.append(
            {
                "_path": request.url.path,
                **body,
                "authorization": request.headers.get("authorization"),
            }
        )
        if body.get("model") == "fake-tts-fail":
            return _error(500, "speech exploded")
        audio = (
            b"ID3FAKE-AUDIO:" + str(body.get("voice")).encode() + b":" + str(body["input"]).encode()
        )
        return Response(audio, media_type="audio/mpeg")

    return [
        Route("/v1/audio/transcriptions", transcriptions, methods=["POST"]),
        Route("/v1/audio/speech", speech, methods=["POST"]),
    ]
