"""Timestamps on the wire: ISO-8601 UTC with milliseconds and `Z` (API.md), the cached
clock of the streamed chunks included."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta, timezone

from vedika.protocol import iso, now_iso

SHAPE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def test_iso_of_naive_aware_and_other_zones() -> None:
    naive = datetime(2026, 1, 2, 3, 4, 5, 678901)
    assert iso(naive) == "2026-01-02T03:04:05.678Z"
    assert iso(naive.replace(tzinfo=UTC)) == "2026-01-02T03:04:05.678Z"
    plus_two = datetime(2026, 1, 2, 5, 4, 5, 678901, tzinfo=timezone(timedelta(hours=2)))
    assert iso(plus_two) == "2026-01-02T03:04:05.678Z"
    assert iso(None) is None


def test_now_iso_is_the_current_millisecond() -> None:
    stamps = []
    for _ in range(5):
        before = datetime.now(UTC).replace(tzinfo=None)
        stamp = now_iso()
        after = datetime.now(UTC).replace(tzinfo=None)
        assert SHAPE.fullmatch(stamp), stamp
        assert iso(before.replace(microsecond=before.microsecond // 1000 * 1000)) <= stamp
        assert stamp <= iso(after)  # type: ignore[operator]
        stamps.append(stamp)
        time.sleep(0.002)
    assert len(set(stamps)) == 5  # a new millisecond, a new string
