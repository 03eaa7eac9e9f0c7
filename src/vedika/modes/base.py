"""The mode seam: how one turn uses sources, tools and the model.

A mode gets the answer being written (`Answer`, implemented by the generation) and
the services it may use (`ModeEnv`), and writes text into the answer. It never
publishes terminal events, stores anything or handles stop: the generation owns the
run, and a stop or shutdown reaches a mode as a cancellation at its next await.

Modes register by name; the request's `mode` picks one:

    @register_mode
    class Summarise(Mode):
        name = "summarise"

        async def run(self, answer: Answer, env: ModeEnv) -> None:
            ...
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from vedika import protocol as p
from vedika.models.catalogue import ModelInfo
from vedika.models.service import ModelService
from vedika.modes.early import EarlyCall
from vedika.settings import Settings
from vedika.sources.service import SourcesService
from vedika.store.engine import Store

if TYPE_CHECKING:
    from vedika.modes.tools.base import ToolRegistry


class Question(Protocol):
    """The stored turn a mode answers (vedika.chat.turns.Turn is one)."""

    @property
    def conversation_id(self) -> str: ...
    @property
    def device_id(self) -> str: ...
    @property
    def model(self) -> ModelInfo: ...
    @property
    def text(self) -> str: ...
    @property
    def sources(self) -> list[str]: ...  # "web", "files"
    @property
    def attachments(self) -> list[str]: ...  # file ids, all the device's own
    @property
    def created_at(self) -> datetime | None: ...
    @property
    def created_conversation(self) -> bool: ...
    @property
    def parent_id(self) -> str | None: ...  # the question's parent: its context's end


@dataclass(frozen=True, slots=True)
class Draft:
    """A turn checked and priced but not stored yet: what a prefetch may look at."""

    model: ModelInfo
    text: str
    sources: list[str]
    attachments: list[str]


# A draft -> its model call, sent now, or None (see Mode.prefetcher).
Prefetcher = Callable[[Draft], EarlyCall | None]


class Answer(Protocol):
    """The answer a mode writes into (`vedika.chat.generation.Generation`)."""

    @property
    def turn(self) -> Question: ...

    citations: list[p.Citation]
    finish_reason: str | None  # of the last model call that wrote into the answer
    # The model call this mode's prefetcher sent while the turn was being stored
    # (vedika.modes.early); a mode that uses it sets this back to None.
    prefetched: EarlyCall | None

    def write(self, text: str) -> None:
        """Append text: it goes out as numbered chunks and is stored."""

    def text(self) -> str:
        """Everything written so far."""

    def add_usage(self, input_tokens: int | None, output_tokens: int | None) -> None:
        """Count one model call's tokens (modes may call the model several times)."""

    def set_citations(self, citations: list[p.Citation]) -> None:
        """Replace the answer's numbered sources and announce them (`sources` event)."""

    def step(self, cls: type[p.Event], **fields: Any) -> None:
        """Publish an extension event (research_step, tool_call, tool_result); it is
        replayed on resume and stored with the answer."""


@dataclass(slots=True)
class ModeEnv:
    """What a mode may use."""

    store: Store
    models: ModelService
    settings: Settings
    sources: SourcesService | None
    tools: ToolRegistry


class Mode:
    name: ClassVar[str]
    order: ClassVar[int] = 100  # where the mode is listed (/api/config features.modes)

    async def run(self, answer: Answer, env: ModeEnv) -> None:
        raise NotImplementedError

    def prefetcher(self, req: p.ChatRequest, env: ModeEnv) -> Prefetcher | None:
        """For a turn about to be accepted: a function that may send its model call
        while the turn is being stored (vedika.modes.early), or None (the default; the
        call then waits for the commit). Asked before the turn's reads, so a turn that
        can have no prefetch costs nothing more."""
        return None


_MODES: dict[str, Mode] = {}


def register_mode(cls: type[Mode]) -> type[Mode]:
    """Class decorator: make a mode available under its `name`."""
    _MODES[cls.name] = cls()
    return cls


def get_mode(name: str) -> Mode:
    """The mode called `name`; unknown names answer like Search."""
    return _MODES.get(name) or _MODES["search"]


def mode_names() -> list[str]:
    return sorted(_MODES, key=lambda name: (_MODES[name].order, name))
