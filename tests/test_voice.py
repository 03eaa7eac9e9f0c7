"""Transcription and speech: through a real `vedika serve` against the fake upstream's
OpenAI-compatible audio endpoints (tests/fakes/audio.py), and the service in-process
for what the shared server is not configured to do (not configured, failing)."""

from __future__ import annotations

import struct

import httpx
import pytest

from tests.fakes.upstream import FakeUpstream
from tests.support.client import Api
from vedika.errors import ServiceUnavailable, VedikaError
from vedika.settings import Settings
from vedika.voice.service import VoiceService, sniff_audio


def wav(payload: bytes = b"VEDIKA-SAY:what is the deepest lake\n") -> bytes:
    """A small, valid WAV file whose samples carry the fake's marker."""
    data = payload + b"\x00" * (1600 - len(payload))
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE"
    fmt = b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16)
    return header + fmt + b"data" + struct.pack("<I", len(data)) + data


async def transcribe(api: Api, audio: bytes, **fields: str) -> httpx.Response:
    return await api.http.post(
        "/ai/transcribe", files={"file": ("clip.bin", audio, "text/plain")}, data=fields
    )


async def test_transcribe_through_the_configured_endpoint(api: Api, upstream: FakeUpstream) -> None:
    r = await transcribe(api, wav(), language="en")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "text": "what is the deepest lake",
        "model": "fake-whisper",
        "language": "en",
    }
    sent = [q for q in upstream.requests() if q["_path"] == "/v1/audio/transcriptions"][-1]
    # the type is read from the bytes, not from what the client said
    assert sent["filename"] == "audio.wav" and sent["content_type"] == "audio/wav"
    assert sent["model"] == "fake-whisper" and sent["language"] == "en"
    assert sent["response_format"] == "json" and sent["size"] == len(wav())


async def test_transcribe_refusals(api: Api, server) -> None:
    cases = [
        (b"just some text, not audio", 415, "unsupported_audio_type"),
        (b"", 400, "empty_audio"),
        (wav() + b"\x00" * 250_000, 413, "audio_too_large"),  # VEDIKA_TRANSCRIBE_MAX_BYTES
    ]
    for audio, status, code in cases:
        r = await transcribe(api, audio)
        assert (r.status_code, r.json()["error"]) == (status, code), r.text
        assert r.json()["message"].endswith(".")
    r = await api.http.post("/ai/transcribe", data={"language": "en"})
    assert r.status_code == 400 and r.json()["error"] == "no_audio"
    r = await api.http.post(
        "/ai/transcribe", files={"file": ("big.wav", wav() + b"\x00" * 3_000_000, "audio/wav")}
    )
    assert r.status_code == 413 and r.json()["error"] == "payload_too_large"  # before parsing
    async with httpx.AsyncClient(base_url=server.url) as anonymous:
        r = await anonymous.post("/ai/transcribe", files={"file": ("a.wav", wav(), "audio/wav")})
        assert r.status_code == 401
        r = await anonymous.post("/ai/speech", json={"text": "hello"})
        assert r.status_code == 401


async def test_speech_reads_text_aloud(api: Api, upstream: FakeUpstream) -> None:
    r = await api.http.post("/ai/speech", json={"text": "The lake is 312 metres deep."})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "audio/mpeg" and r.headers["cache-control"] == "no-store"
    assert r.content == b"ID3FAKE-AUDIO:alloy:The lake is 312 metres deep."
    sent = [q for q in upstream.requests() if q["_path"] == "/v1/audio/speech"][-1]
    assert sent["model"] == "fake-tts" and sent["response_format"] == "mp3"
    r = await api.http.post("/ai/speech", json={"text": "Hi.", "voice": "nova", "format": "wav"})
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    assert r.content.endswith(b"nova:Hi.")


async def test_speech_refusals(api: Api) -> None:
    r = await api.http.post("/ai/speech", json={"text": "x" * 501})  # VEDIKA_SPEECH_MAX_CHARS
    assert r.status_code == 413 and r.json()["error"] == "text_too_long"
    for body in (
        {"text": ""},
        {"text": "hi", "voice": "../../etc"},
        {"text": "hi", "format": "exe"},
    ):
        r = await api.http.post("/ai/speech", json=body)
        assert r.status_code == 400 and r.json()["error"] == "validation_error", body
    r = await api.http.post("/ai/speech", json={"text": "   "})
    assert r.status_code == 400 and r.json()["error"] == "empty_text"


async def test_config_says_what_voice_can_do(api: Api) -> None:
    features = (await api.http.get("/api/config")).json()["features"]
    assert features["transcription"] is True and features["speech"] is True
    assert features["modes"] == ["search", "research", "agents"]
    assert {"web_search", "fetch_url", "read_file", "calculator", "current_time"} <= set(
        features["agent_tools"]
    )


# ---------------------------------------------------------------- in-process


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


async def test_not_configured_is_a_503_with_a_sentence() -> None:
    async with httpx.AsyncClient() as client:
        voice = VoiceService(settings(), client)
        assert not voice.transcription and not voice.speech
        with pytest.raises(ServiceUnavailable) as info:
            await voice.transcribe(wav())
        assert info.value.code == "transcription_unavailable" and info.value.status == 503
        with pytest.raises(ServiceUnavailable) as info:
            await voice.speak("hello", voice=None, fmt="mp3")
        assert info.value.code == "speech_unavailable"


async def test_failing_and_unreachable_endpoints(upstream: FakeUpstream) -> None:
    async with httpx.AsyncClient() as client:
        failing = VoiceService(
            settings(
                transcribe_url=upstream.base_url,
                transcribe_model="fake-whisper-fail",
                speech_url=upstream.base_url,
                speech_model="fake-tts-fail",
            ),
            client,
        )
        with pytest.raises(VedikaError) as info:
            await failing.transcribe(wav())
        assert (info.value.status, info.value.code) == (502, "transcription_failed")
        with pytest.raises(VedikaError) as info:
            await failing.speak("hello", voice=None, fmt="mp3")
        assert (info.value.status, info.value.code) == (502, "speech_failed")
        gone = VoiceService(settings(transcribe_url="http://127.0.0.1:9"), client)
        with pytest.raises(VedikaError) as info:
            await gone.transcribe(wav())
        assert info.value.status == 502 and "try again" in info.value.message


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (wav()[:16], "wav"),
        (b"OggS\x00\x02" + b"\x00" * 10, "ogg"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81", "webm"),
        (b"ID3\x04\x00", "mp3"),
        (b"\xff\xfb\x90\x64", "mp3"),
        (b"fLaC\x00\x00", "flac"),
        (b"\x00\x00\x00\x20ftypM4A ", "m4a"),
        (b"<html>", None),
        (b"%PDF-1.7", None),
    ],
)
def test_audio_is_recognised_by_its_bytes(head: bytes, kind: str | None) -> None:
    found = sniff_audio(head)
    assert (found.extension if found else None) == kind
