"""`POST /ai/transcribe` (audio -> text) and `POST /ai/speech` (text -> audio)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.datastructures import UploadFile

from vedika.api.deps import CurrentSession, ServicesDep
from vedika.api.openapi import multipart_body
from vedika.errors import BadRequest
from vedika.protocol import SpeechRequest
from vedika.scale.ratelimit import enforce, enforce_per_address
from vedika.services import Services
from vedika.voice.deepgram import DeepgramKeys
from vedika.voice.service import VoiceService

router = APIRouter(tags=["voice"])

_AUDIO_BODY = multipart_body(
    ["file"],
    {
        "file": {
            "type": "string",
            "format": "binary",
            "description": "The recording: WAV, Ogg, WebM, MP3, FLAC or M4A (read from its "
            "first bytes), at most VEDIKA_TRANSCRIBE_MAX_BYTES.",
        },
        "language": {
            "type": "string",
            "maxLength": 16,
            "description": "ISO-639-1 hint, e.g. en.",
        },
    },
)
_AUDIO_OUT: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The speech, as audio in the requested format.",
        "content": {
            "audio/mpeg": {"schema": {"type": "string", "format": "binary"}},
            "audio/ogg": {"schema": {"type": "string", "format": "binary"}},
            "audio/wav": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


def _voice(services: Services) -> VoiceService:
    return VoiceService(services.settings, services.http)


async def _limit(services: Services, device_id: str) -> None:
    await enforce(
        services.limiter,
        f"voice:{device_id}",
        services.settings.rate_voice_per_minute,
        60,
        "voice requests",
    )


@router.post("/ai/transcribe", openapi_extra=_AUDIO_BODY)
async def transcribe(
    services: ServicesDep, session: CurrentSession, request: Request
) -> dict[str, Any]:
    """Turn a recording into text (for dictation where the browser has no speech
    recognition). `503 transcription_unavailable` when VEDIKA_TRANSCRIBE_URL is not set;
    `413` over the size limit; `415` for anything that is not audio."""
    await _limit(services, session.owner)
    form = await request.form(max_files=1, max_fields=4)
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise BadRequest(
                "Send the recording as multipart/form-data, field name 'file'.", code="no_audio"
            )
        limit = services.settings.transcribe_max_bytes
        audio = await upload.read(limit + 1)
        language = form.get("language")
        lang = language.strip()[:16] if isinstance(language, str) and language.strip() else None
        return await _voice(services).transcribe(audio, language=lang)
    finally:
        await form.close()


@router.post("/ai/speech", response_class=Response, responses=_AUDIO_OUT)
async def speech(services: ServicesDep, session: CurrentSession, body: SpeechRequest) -> Response:
    """Read text aloud (voice mode). `503 speech_unavailable` when VEDIKA_SPEECH_URL is
    not set; `413 text_too_long` over VEDIKA_SPEECH_MAX_CHARS."""
    await _limit(services, session.owner)
    audio, media_type = await _voice(services).speak(body.text, voice=body.voice, fmt=body.format)
    return Response(audio, media_type=media_type, headers={"Cache-Control": "no-store"})


@router.get("/deepgram/token")
async def deepgram_token(services: ServicesDep, request: Request) -> dict[str, Any]:
    """A Deepgram key that expires in VEDIKA_DEEPGRAM_KEY_TTL seconds, for clients that
    stream audio to Deepgram themselves (the original web client). No session: it is
    rate-limited per address. `503 dictation_unavailable` without a Deepgram key."""
    await enforce_per_address(
        services.limiter,
        request,
        "deepgram",
        services.settings.rate_deepgram_per_minute,
        "dictation keys from your address",
    )
    keys = services.deepgram or DeepgramKeys(services.settings, services.http)
    return await keys.temporary_key()
