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


def test_iso_of_whole_seconds_and_a_zone_equal_to_utc() -> None:
    # isoformat() leaves out a zero fraction; the wire keeps its three digits.
    whole = datetime(2026, 1, 2, 3, 4, 5)
    assert iso(whole) == "2026-01-02T03:04:05.000Z"
    assert iso(whole.replace(tzinfo=UTC)) == "2026-01-02T03:04:05.000Z"
    # A zero offset that is not `UTC` itself (a driver's own tzinfo).
    zero = datetime(2026, 1, 2, 3, 4, 5, 1000, tzinfo=timezone(timedelta(0)))
    assert iso(zero) == "2026-01-02T03:04:05.001Z"
    for value in (whole, zero, datetime(999, 12, 31, 23, 59, 59, 999999)):
        assert SHAPE.fullmatch(iso(value) or ""), iso(value)


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


def test_now_iso_across_a_second_and_with_a_whole_second(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # The kept text of the second is replaced when the second changes, and a stamp at
    # .000 keeps its three digits.
    now = [1_767_323_045_999_400_000]  # 2026-01-02T03:04:05.999Z
    monkeypatch.setattr(time, "time_ns", lambda: now[0])
    assert now_iso() == "2026-01-02T03:04:05.999Z"
    now[0] += 1_000_000
    assert now_iso() == "2026-01-02T03:04:06.000Z"
    now[0] += 7_000_000
    assert now_iso() == "2026-01-02T03:04:06.007Z"
    now[0] -= 2_000_000_000  # a clock set back reads as what it says
    assert now_iso() == "2026-01-02T03:04:04.007Z"
