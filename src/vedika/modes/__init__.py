"""Modes: how a turn uses sources and tools (docs/modes.md).

    base        the seam: Mode, Answer (what a mode writes into), ModeEnv, the registry
    common      system prompt, history, streaming one model call into the answer
    search      answer from the turn's sources, cited (the default)
    research    plan sub-questions, search and read each, write a cited report
    agents      the model calls tools in a loop (tools/: web_search, fetch_url,
                read_file, calculator, current_time, and the operator's own)

Importing this package registers the built-in modes.
"""

from vedika.modes import agents, research, search  # noqa: F401
from vedika.modes.base import Answer, Mode, ModeEnv, get_mode, mode_names, register_mode

__all__ = ["Answer", "Mode", "ModeEnv", "get_mode", "mode_names", "register_mode"]
