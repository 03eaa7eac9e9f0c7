"""Tools for Agents mode. Importing this package registers the built-ins."""

from vedika.modes.tools import builtin  # noqa: F401
from vedika.modes.tools.base import (
    Tool,
    ToolContext,
    ToolError,
    ToolRegistry,
    load_tool_modules,
    register_tool,
    registry,
)

__all__ = [
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolRegistry",
    "load_tool_modules",
    "register_tool",
    "registry",
]
