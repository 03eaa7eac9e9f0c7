"""Talking to the operator's audio endpoints: `/audio/transcriptions` (speech to text)
and `/audio/speech` (text to speech), OpenAI-compatible.

Both are optional: when VEDIKA_TRANSCRIBE_URL / VEDIKA_SPEECH_URL are not set the
calls answer 503 and `/api/config` says so, and the pages use the browser's own
speech recognition and synthesis where it has them. Audio sent to be transcribed is
checked by its first bytes (WAV, Ogg, WebM, MP3, FLAC, MP4/M4A), never by the
client's content type, and forwarded as is; nothing is stored.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import orjson
import structlog

from vedika.errors import (
    BadRequest,
    PayloadTooLarge,
    ServiceUnavailable,
    UnsupportedMediaType,
    VedikaError,
)
from vedika.settings import Settings

log = structlog.get_logger(__name__)

MAX_AUDIO_OUT = 25_000_000  # the most speech audio read back from the endpoint
SPEECH_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
}


@dataclass(frozen=True, slots=True)
class AudioKind:
    extension: str
    media_type: str


def sniff_audio(head: bytes) -> AudioKind | None:
    """The audio container, from the first bytes; None for anything else."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return AudioKind("wav", "audio/wav")
    if head[:4] == b"OggS":
        return AudioKind("ogg", "audio/ogg")
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return AudioKind("webm", "audio/webm")
    if head[:4] == b"fLaC":
        return AudioKind("flac", "audio/flac")
    if head[4:8] == b"ftyp":
        return AudioKind("m4a", "audio/mp4")
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return AudioKind("mp3", "audio/mpeg")
    return None


def _failed(what: str, exc: Exception | None = None, status: int | None = None) -> VedikaError:
    if isinstance(exc, httpx.TimeoutException):
        return VedikaError(
            f"The {what} service did not answer in time. Please try again.",
            code=f"{what}_timeout",
            status=504,
            retryable=True,
        )
    detail = f" (it answered {status})" if status else ""
    return VedikaError(
        f"The {what} service failed{detail}. Please try again later.",
        code=f"{what}_failed",
        status=502,
        retryable=True,
    )


class VoiceService:
    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        self.settings = settings
        self.http = http

    @property
    def transcription(self) -> bool:
        return self.settings.transcribe_url is not None

    @property
    def speech(self) -> bool:
        return self.settings.speech_url is not None

    def _headers(self, key: object) -> dict[str, str]:
        secret = key.get_secret_value() if key is not None else ""  # type: ignore[attr-defined]
        return {"Authorization": f"Bearer {secret}"} if secret else {}

    def check_audio(self, audio: bytes) -> AudioKind:
        """Refuse what cannot be transcribed, before anything is sent anywhere."""
        limit = self.settings.transcribe_max_bytes
        if not audio:
            raise BadRequest("The recording is empty.", code="empty_audio")
        if len(audio) > limit:
            raise PayloadTooLarge(
                f"The recording is {len(audio):,} bytes; the limit is {limit:,}.",
                code="audio_too_large",
            )
        kind = sniff_audio(audio[:16])
        if kind is None:
            raise UnsupportedMediaType(
                "That is not audio Vedika can send for transcription "
                "(WAV, Ogg, WebM, MP3, FLAC or M4A).",
                code="unsupported_audio_type",
            )
        return kind

    async def transcribe(self, audio: bytes, *, language: str | None = None) -> dict[str, object]:
        kind = self.check_audio(audio)
        s = self.settings
        if s.transcribe_url is None:
            raise ServiceUnavailable(
                "Transcription is not configured on this server (VEDIKA_TRANSCRIBE_URL).",
                code="transcription_unavailable",
                retryable=False,
            )
        data = {"model": s.transcribe_model, "response_format": "json"}
        if language:
            data["language"] = language
        try:
            resp = await self.http.post(
                f"{s.transcribe_url}/audio/transcriptions",
                data=data,
                files={"file": (f"audio.{kind.extension}", audio, kind.media_type)},
                headers=self._headers(s.transcribe_api_key),
                timeout=s.voice_timeout,
            )
        except httpx.HTTPError as exc:
            log.warning("voice.transcribe_failed", error=repr(exc)[:200])
            raise _failed("transcription", exc) from None
        if resp.status_code != 200:
            log.warning("voice.transcribe_failed", status=resp.status_code)
            raise _failed("transcription", status=resp.status_code)
        try:
            body = orjson.loads(resp.content)
        except orjson.JSONDecodeError:
            body = None
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str):
            raise _failed("transcription")
        out: dict[str, object] = {"text": text.strip(), "model": s.transcribe_model}
        if isinstance(body, dict) and isinstance(body.get("language"), str):
            out["language"] = body["language"]
        return out

    async def speak(self, text: str, *, voice: str | None, fmt: str) -> tuple[bytes, str]:
        s = self.settings
        text = text.strip()
        if not text:
            raise BadRequest("There is no text to read aloud.", code="empty_text")
        if len(text) > s.speech_max_chars:
            raise PayloadTooLarge(
                f"The text is {len(text):,} characters; at most {s.speech_max_chars:,} "
                "can be read aloud at once.",
                code="text_too_long",
            )
        if s.speech_url is None:
            raise ServiceUnavailable(
                "Speech is not configured on this server (VEDIKA_SPEECH_URL).",
                code="speech_unavailable",
                retryable=False,
            )
        body = {
            "model": s.speech_model,
            "input": text,
            "voice": voice or s.speech_voice,
            "response_format": fmt,
        }
        try:
            async with self.http.stream(
                "POST",
                f"{s.speech_url}/audio/speech",
                json=body,
                headers=self._headers(s.speech_api_key),
                timeout=s.voice_timeout,
            ) as resp:
                if resp.status_code != 200:
                    log.warning("voice.speech_failed", status=resp.status_code)
                    raise _failed("speech", status=resp.status_code)
                chunks = []
                size = 0
                async for chunk in resp.aiter_bytes():
                    size += len(chunk)
                    if size > MAX_AUDIO_OUT:
                        raise _failed("speech")
                    chunks.append(chunk)
        except httpx.HTTPError as exc:
            log.warning("voice.speech_failed", error=repr(exc)[:200])
            raise _failed("speech", exc) from None
        audio = b"".join(chunks)
        if not audio:
            raise _failed("speech")
        return audio, SPEECH_TYPES.get(fmt, "application/octet-stream")
