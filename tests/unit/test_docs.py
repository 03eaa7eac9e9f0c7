"""Docs that cannot go stale: every event type and routeKey is in docs/protocol.md."""

from __future__ import annotations

from pathlib import Path

import msgspec

from vedika import protocol
from vedika.api.socket import ROUTES

DOC = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()


def test_every_event_type_is_documented() -> None:
    tags = [
        cls.__struct_config__.tag
        for cls in vars(protocol).values()
        if isinstance(cls, type)
        and issubclass(cls, msgspec.Struct)
        and cls is not protocol.Event
        and cls.__struct_config__.tag
    ]
    assert "content_chunk" in tags and len(tags) >= 10
    for tag in tags:
        assert f"`{tag}`" in DOC, f"event {tag} is missing from docs/protocol.md"


def test_every_route_key_is_documented() -> None:
    for key in ROUTES:
        assert f"`{key}`" in DOC, f"routeKey {key} is missing from docs/protocol.md"
