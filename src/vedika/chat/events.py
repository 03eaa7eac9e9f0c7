"""Building wire events for one answer: encoded once, wrapped as hub entries."""

from __future__ import annotations

from typing import Any, TypeVar

from vedika import protocol as p
from vedika.scale.hub import Entry

E = TypeVar("E", bound=p.Event)


class EventFactory:
    """Events for one (conversation, message): ids and the clock filled in."""

    __slots__ = ("conversation_id", "message_id")

    def __init__(self, conversation_id: str, message_id: str) -> None:
        self.conversation_id = conversation_id
        self.message_id = message_id

    def _ids(self) -> dict[str, str]:
        return {
            "conversation_id": self.conversation_id,
            "message_id": self.message_id,
            "timestamp": p.now_iso(),
        }

    def chunk(self, content: str, chunk_id: int) -> Entry:
        # Once per token: the fields by name, without `_ids()`'s dict (1.4 -> 0.9 us).
        event = p.ContentChunk(
            content=content,
            chunk_id=chunk_id,
            conversation_id=self.conversation_id,
            message_id=self.message_id,
            timestamp=p.now_iso(),
        )
        return Entry("content_chunk", chunk_id, p.encode(event).decode())

    def event(self, cls: type[E], **fields: Any) -> E:
        """The event itself, for a caller that also keeps it (see `entry`)."""
        return cls(**fields, **self._ids())

    def make(self, cls: type[Any], last_chunk: int, **fields: Any) -> Entry:
        return entry(cls(**fields, **self._ids()), last_chunk)


def entry(event: p.Event, last_chunk: int) -> Entry:
    """`event` encoded once, as the hub carries it."""
    return Entry(event.__struct_config__.tag, last_chunk, p.encode(event).decode())  # type: ignore[arg-type]
