"""Every wire event and client message, in one module.

Server events are msgspec structs tagged by `type`; they are encoded once when
published and the same bytes go to every WebSocket and SSE subscriber. Client
requests (REST bodies and socket messages) are pydantic models so FastAPI can
document them in the OpenAPI schema and the socket validates with the same rules.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

import msgspec
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    field_validator,
)

# ---------------------------------------------------------------- helpers


def utcnow() -> datetime:
    return datetime.now(UTC)


def today() -> str:
    """The UTC date, `YYYY-MM-DD`: the coins' day and the prompts' "today"."""
    return utcnow().date().isoformat()  # strftime costs three times as much


def iso(dt: datetime | None) -> str | None:
    """ISO-8601 UTC with `Z` and milliseconds, as API.md asks."""
    if dt is None:
        return None
    # This runs per chunk and twice per conversation listed, so it takes the cheapest
    # path: `isoformat()` without arguments (its `timespec` keyword costs a third more)
    # cut to the millisecond. Naive values (SQLite) are UTC already, and so are the
    # aware ones asyncpg gives (tzinfo is `UTC` itself); any other zone is converted.
    zone = dt.tzinfo
    if zone is not None and zone is not UTC and dt.utcoffset():
        dt = dt.astimezone(UTC)
    text = dt.isoformat()
    # Without microseconds isoformat leaves the fraction out altogether.
    return text[:23] + "Z" if dt.microsecond else text[:19] + ".000Z"


_last_second: tuple[int, str] = (-1, "")  # a second, and its text up to the dot
_last_stamp: tuple[int, str] = (-1, "")  # a millisecond, and its stamp


def now_iso() -> str:
    """The current time as `iso` gives it. Every streamed chunk carries one: a few
    thousand a second. Those in the same millisecond share its string; the text up to
    the seconds changes once a second, so it is kept too, and a new millisecond only
    formats its three digits (0.8 us instead of 3.8 us for a datetime built, cut and
    formatted; `timeit` on the benchmark host)."""
    global _last_second, _last_stamp
    ms = time.time_ns() // 1_000_000
    if _last_stamp[0] == ms:
        return _last_stamp[1]
    seconds, milli = divmod(ms, 1000)
    if _last_second[0] != seconds:
        whole = datetime.fromtimestamp(seconds, UTC).isoformat()  # ...T03:04:05+00:00
        _last_second = (seconds, whole[:19] + ".")
    _last_stamp = (ms, f"{_last_second[1]}{milli:03d}Z")
    return _last_stamp[1]


def aware(dt: datetime) -> datetime:
    """`dt` in UTC with its zone: SQLite gives back the naive UTC it was given."""
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


class MessageStatus(StrEnum):
    """A stored message's `status` (on the wire in GET /ai/conversations/{id})."""

    STREAMING = "streaming"  # an answer being written
    COMPLETE = "complete"  # every question; an answer that finished
    STOPPED = "stopped"  # stopped by its asker; the text so far is kept
    ERROR = "error"  # failed (the model, a tool, the stream service)
    INTERRUPTED = "interrupted"  # its server stopped or died while writing it

    @property
    def ended_well(self) -> bool:
        """Whether it ends with `stream_complete` (else `stream_error`)."""
        return self in (MessageStatus.COMPLETE, MessageStatus.STOPPED)


# ---------------------------------------------------------------- client text

# NUL cannot be stored in a PostgreSQL text column and a lone surrogate cannot be
# encoded as UTF-8 (SQLite, the upstream, the logs): either would fail deep in the
# store as a 500 or a "database unavailable". Refused at the edge instead, as a 400
# (REST) or a `stream_error` (socket), with the field named.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # text no database column can hold


def check_text(value: str) -> str:
    """`value` unchanged, or ValueError when it holds NUL or an unpaired surrogate."""
    found = UNSTORABLE.search(value)
    if found is not None:
        what = "a NUL character" if found.group() == "\x00" else "an unpaired surrogate"
        raise ValueError(f"text must not contain {what} (at position {found.start()})")
    return value


# Every free-text field a client sends is `Text` (or `Clipped`): one rule, everywhere.
Text = Annotated[str, AfterValidator(check_text)]


def _clip(limit: int) -> BeforeValidator:
    return BeforeValidator(lambda v: v[:limit] if isinstance(v, str) else v)


# ---------------------------------------------------------------- client requests

Mode = Literal["search", "research", "agents"]
QueryType = Literal["general", "technical", "creative", "analytical"]
Source = Literal["web", "files"]
InteractionMode = Literal["type", "dictation", "voice"]


class ChatRequest(BaseModel):
    """Fields shared by `/ai/chat/start`, `/ai/chat` and the socket's `stream_chat`."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)

    message: Text = Field(..., description="1..32,000 characters after trimming (configurable).")
    conversation_id: Text | None = Field(None, max_length=64)
    model_id: Text | None = Field(None, max_length=200, description="`best` or a model id.")
    query_type: QueryType | None = None
    mode: Mode = "search"
    sources: list[Source] | None = Field(None, max_length=2)
    attachments: list[Annotated[Text, Field(max_length=128)]] | None = Field(None, max_length=20)
    interaction_mode: InteractionMode | None = None
    request_type: Literal["anonymous", "authenticated"] | None = None
    client_message_id: Text | None = Field(None, min_length=1, max_length=128)
    session_id: Text | None = Field(None, max_length=128)
    device_id: Text | None = Field(None, max_length=128)
    # Branches (docs/protocol.md "Branches"): at most one, in an existing conversation.
    parent_id: Text | None = Field(
        None, max_length=64, description="Continue from this answer (a new branch)."
    )
    edit_of: Text | None = Field(
        None, max_length=64, description="A question: the new question becomes its sibling."
    )
    regenerate: Text | None = Field(
        None, max_length=64, description="An answer: a new answer to its question, as its sibling."
    )

    @field_validator(
        "conversation_id",
        "model_id",
        "client_message_id",
        "parent_id",
        "edit_of",
        "regenerate",
        mode="before",
    )
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @property
    def branching(self) -> bool:
        """Whether the request names a place in the conversation's tree."""
        return bool(self.parent_id or self.edit_of or self.regenerate)

    def fingerprint(self) -> str:
        """What makes two requests with the same client_message_id 'the same'."""
        return "\x1f".join(
            [
                self.message.strip(),
                self.conversation_id or "",
                self.model_id or "",
                self.mode,
                ",".join(self.sources or []),
                ",".join(self.attachments or []),
            ]
            # A turn on a branch is another turn than the same text elsewhere; a
            # request without branch fields keeps the fingerprint it always had.
            + (
                [f"{self.parent_id or ''}/{self.edit_of or ''}/{self.regenerate or ''}"]
                if self.branching
                else []
            )
        )


class StreamChatMessage(BaseModel):
    """The socket's `stream_chat`: a chat request whose `message` is optional."""

    model_config = ConfigDict(extra="ignore")

    message: Text | None = None
    conversation_id: Text | None = Field(None, max_length=64)
    message_id: Text | None = Field(None, max_length=64)
    resume_from: int = Field(0, ge=0)
    session_id: Text | None = Field(None, max_length=128)
    device_id: Text | None = Field(None, max_length=128)


class StopRequest(BaseModel):
    message_id: Text | None = Field(None, max_length=64)
    conversation_id: Text | None = Field(None, max_length=64)
    session_id: Text | None = Field(None, max_length=128)


def _screen(value: Any) -> Any:
    """`"1920x1080"` (clipped to 64 characters) or `{"width": 1920, "height": 1080}`
    (at most 8 numbers under short names); anything else is refused with one clear
    sentence rather than pydantic's per-union-member errors."""
    if value is None:
        return None
    if isinstance(value, str):
        return check_text(value[:64])
    if isinstance(value, dict) and len(value) <= 8:
        numbers = all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value.values()
        )
        names = all(isinstance(k, str) and len(k) <= 32 for k in value)
        if numbers and names:
            for key in value:
                check_text(key)
            return value
    raise ValueError("screen must be a short string or an object of at most 8 numbers")


class DeviceInfo(BaseModel):
    """What a client says about itself, stored with each session (for the operator).

    Anyone may create a session, so what is kept is bounded: the four fields the web
    clients send, each clipped to a length no real browser needs (a longer user agent
    is truncated, not refused: a session must never fail over it); other keys are
    dropped. At most about 1 KB is stored per session."""

    model_config = ConfigDict(extra="ignore")
    user_agent: Annotated[Text, _clip(512)] | None = None
    platform: Annotated[Text, _clip(64)] | None = None
    language: Annotated[Text, _clip(64)] | None = None
    screen: Annotated[str | dict[str, int | float] | None, BeforeValidator(_screen)] = None


class DeviceSessionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    device_id: str | None = Field(None, min_length=8, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    # Proof of holding `device_id` (returned once, when the device was created); the
    # pages send it in an HttpOnly cookie instead. See vedika.identity.devices.
    device_secret: Text | None = Field(None, max_length=128)
    device_info: DeviceInfo | None = None


class RenameRequest(BaseModel):
    """`PATCH /ai/conversations/{id}`: any of a new title, pinned, archived (issue 18)."""

    title: Text | None = Field(None, min_length=1, max_length=200)
    # Strict: `0` or `"yes"` is a clear 400, not a silent false or true.
    pinned: StrictBool | None = None
    archived: StrictBool | None = None


class PreferenceRequest(BaseModel):
    model_id: Text = Field(..., min_length=1, max_length=200)
    session_id: Text | None = Field(None, max_length=128)


class SpeechRequest(BaseModel):
    """`POST /ai/speech`: text to read aloud (VEDIKA_SPEECH_MAX_CHARS at most)."""

    model_config = ConfigDict(extra="ignore")

    text: Text = Field(..., min_length=1, max_length=100_000)
    voice: str | None = Field(
        None,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Default: VEDIKA_SPEECH_VOICE.",
    )
    format: Literal["mp3", "opus", "aac", "flac", "wav"] = "mp3"
    session_id: str | None = Field(None, max_length=128)


# ---------------------------------------------------------------- server events


class Routing(msgspec.Struct):
    selected_model: str
    reason: str
    confidence: float


class Citation(msgspec.Struct, omit_defaults=True):
    """A numbered source: a web page (`url`, `site`) or an attached file (`file_id`,
    `page` and/or `section`). Every text field is plain text: clients escape it."""

    index: int
    title: str
    url: str | None = None
    file_id: str | None = None
    site: str | None = None
    snippet: str | None = None
    page: int | None = None
    section: str | None = None


class Credits(msgspec.Struct):
    remaining: int
    daily_total: int
    used_today: int


class Event(msgspec.Struct, tag_field="type", kw_only=True):
    conversation_id: str
    message_id: str
    timestamp: str


class ConnectionEstablished(msgspec.Struct, tag="connection_established", tag_field="type"):
    connection_id: str


class Pong(msgspec.Struct, tag="pong", tag_field="type"):
    timestamp: str


class ConversationStarted(Event, tag="conversation_started"):
    user_message_id: str


class CreditsInfo(Event, tag="credits_info"):
    vedika_coins_remaining: int
    daily_credits: int
    message: str


class CreditsExhaustedEvent(Event, tag="credits_exhausted"):
    vedika_coins_remaining: int
    daily_credits: int
    message: str
    action_required: str


class StreamStart(Event, tag="stream_start"):
    model: str
    model_name: str
    routing: Routing


class Sources(Event, tag="sources"):
    citations: list[Citation]


class ContentChunk(Event, tag="content_chunk"):
    content: str
    chunk_id: int


class StreamComplete(Event, tag="stream_complete"):
    full_response: str
    total_chunks: int
    tokens: int
    input_tokens: int
    output_tokens: int
    citations: list[Citation]
    credits: Credits
    finish_reason: str


class StreamError(Event, tag="stream_error"):
    error: str
    code: str
    retryable: bool


# ---------------------------------------------------------------- extension events
# Research and Agents modes (docs/modes.md). Clients that do not know them ignore them;
# they are replayed on resume like every other event and stored with the answer.


class ResearchStep(Event, tag="research_step"):
    """One step of a research run: planning, one search (and the pages read for it),
    writing. A step is sent when it starts (`status: "running"`) and again when it ends
    (`"done"`, with the sources it found); `total` may grow once the plan is known."""

    step: int
    total: int
    label: str
    citations: list[Citation]
    phase: str = "search"  # plan | search | write
    status: str = "running"  # running | done


class ToolCallEvent(Event, tag="tool_call"):
    """The model asked for a tool (Agents mode); `step` counts tool calls from 1."""

    call_id: str
    name: str
    arguments: dict[str, Any]
    step: int


class ToolResultEvent(Event, tag="tool_result"):
    """What the tool answered. `content` is cut to a preview (`truncated` says so); the
    model got up to VEDIKA_AGENT_TOOL_OUTPUT_CHARS of it. `ok: false` is an error the
    model was told about, not a failed answer."""

    call_id: str
    name: str
    ok: bool
    content: str
    step: int
    truncated: bool = False


STEP_EVENTS: dict[str, type[Event]] = {
    "research_step": ResearchStep,
    "tool_call": ToolCallEvent,
    "tool_result": ToolResultEvent,
}

# The events that end an answer's stream: exactly one of them, always last.
TERMINAL_TYPES = frozenset({"stream_complete", "stream_error"})
TERMINAL_KINDS = frozenset(t.encode() for t in TERMINAL_TYPES)  # as Redis returns them

_encoder = msgspec.json.Encoder()


def encode(event: msgspec.Struct) -> bytes:
    return _encoder.encode(event)


def socket_error(message: str, code: str = "bad_request", **ids: str | None) -> bytes:
    """A `stream_error` for a bad client message (no generation behind it)."""
    return encode(
        StreamError(
            conversation_id=ids.get("conversation_id") or "",
            message_id=ids.get("message_id") or "",
            timestamp=now_iso(),
            error=message,
            code=code,
            retryable=False,
        )
    )
