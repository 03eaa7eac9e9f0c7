"""Functions the isolation tests run in a child process (importable by name there)."""

from __future__ import annotations

import time


def hog_memory(n: int) -> int:
    block = bytearray(n)
    return len(block)


def sleep_for(seconds: float) -> str:
    time.sleep(seconds)
    return "woke"


def crash() -> None:
    import os

    os._exit(3)
