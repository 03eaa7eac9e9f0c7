"""Which browser origins may call this server (API.md section 8)."""

from __future__ import annotations

from urllib.parse import urlsplit


def origin_allowed(origin: str | None, host: str | None, allowed: list[str]) -> bool:
    """Non-browser clients (no Origin) and the server's own pages always pass."""
    if not origin:
        return True
    origin = origin.rstrip("/")
    if "*" in allowed or origin in allowed:
        return True
    parts = urlsplit(origin)
    return bool(host) and parts.netloc == host
