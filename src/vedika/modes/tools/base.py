"""The tool seam for Agents mode: one small async method, a JSON Schema, a registry.

A tool turns arguments (a dict the model wrote, checked against nothing but what the
tool itself checks) into text for the model. It raises `ToolError` with a sentence
when it cannot do what was asked; the agent hands that sentence back to the model as
the tool's result, so a failing tool never fails the answer.

An operator adds a tool by registering it in a module named in
VEDIKA_AGENT_TOOL_MODULES (imported at start-up)::

    from vedika.modes.tools import Tool, ToolContext, ToolError, register_tool

    @register_tool
    class Weather(Tool):
        name = "weather"
        description = "Today's weather for a city."
        parameters = {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        }

        async def run(self, args: dict, ctx: ToolContext) -> str:
            ...
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from vedika.models.providers import ToolSpec
from vedika.settings import Settings
from vedika.sources.citations import Source
from vedika.sources.service import SourcesService
from vedika.store.engine import Store


class ToolError(Exception):
    """The tool could not do it; the message (for the model and the person) says why."""


@dataclass(slots=True)
class ToolContext:
    """What a tool may touch for this answer: the device's own files, the web through
    the safe fetcher, and the answer's numbered sources."""

    device_id: str
    conversation_id: str
    attachments: list[str]
    settings: Settings
    store: Store
    sources: SourcesService | None
    cite: Callable[[Source], int]  # adds a source (or finds it) and returns its number


class Tool:
    name: ClassVar[str]
    description: ClassVar[str]
    parameters: ClassVar[dict[str, Any]] = {"type": "object", "properties": {}}

    def available(self, settings: Settings, sources: SourcesService | None) -> bool:
        """Whether this server can run the tool (e.g. web search needs a provider)."""
        return True

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> str:
        raise NotImplementedError

    def spec(self) -> ToolSpec:
        return ToolSpec(name=self.name, description=self.description, parameters=self.parameters)


class ToolRegistry:
    """The tools offered to models, by name."""

    def __init__(self, tools: dict[str, Tool] | None = None) -> None:
        self._tools: dict[str, Tool] = dict(tools or {})

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return list(self._tools)

    def offered(self, settings: Settings, sources: SourcesService | None) -> list[Tool]:
        """The tools this server can run, limited to VEDIKA_AGENT_TOOLS when it is set."""
        wanted = settings.agent_tools
        return [
            t
            for name, t in self._tools.items()
            if (not wanted or name in wanted) and t.available(settings, sources)
        ]


_TOOLS: dict[str, Tool] = {}


def register_tool(cls: type[Tool]) -> type[Tool]:
    """Class decorator: offer this tool to models (a later one replaces a same-named one)."""
    _TOOLS[cls.name] = cls()
    return cls


def load_tool_modules(modules: list[str]) -> None:
    """Import the operator's tool modules (VEDIKA_AGENT_TOOL_MODULES); each registers
    its tools. A module that cannot be imported stops the start with a sentence."""
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise RuntimeError(
                f"VEDIKA_AGENT_TOOL_MODULES names {name!r}, which cannot be imported ({exc})."
            ) from None


def registry() -> ToolRegistry:
    """Every registered tool (built-ins and the operator's)."""
    return ToolRegistry(_TOOLS)
