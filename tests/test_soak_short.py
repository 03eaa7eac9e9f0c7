"""The short soak CI runs: concurrent answers with reconnects, every count must be 0."""

from __future__ import annotations

import pytest

from tests.soak import run

pytestmark = pytest.mark.slow


def test_short_soak_single_instance() -> None:
    tally = run(streams=40, seconds=6, redis=False)
    assert tally.answers >= 40 and tally.reconnects > 0
    assert tally.clean(), tally


@pytest.mark.postgres
@pytest.mark.redis
def test_short_soak_two_instances_over_redis() -> None:
    tally = run(streams=40, seconds=6, redis=True)
    assert tally.answers >= 40 and tally.reconnects > 0
    assert tally.clean(), tally


@pytest.mark.postgres
@pytest.mark.redis
def test_short_soak_behind_nginx_with_a_kill() -> None:
    """Two instances behind nginx (docs/deployment.md), one SIGKILLed mid-soak and
    started again: every answer ends once, in order, and as stored."""
    tally = run(streams=40, seconds=12, redis=False, nginx=True, kill_every=4)
    if tally.clean() and tally.interrupted == 0:
        # The kill cut no answer: a loaded machine spends most of each answer's time in
        # the client's own checks, so few answers are live at any instant, and once in
        # CI none was on the victim when it died. That run proved nothing about cut
        # answers: run again (a reaper that never ends a cut answer fails both runs).
        tally = run(streams=40, seconds=12, redis=False, nginx=True, kill_every=4)
    # One kill, or two when the restart is quick (every 4 s of 12): timing, not behaviour.
    assert tally.kills >= 1 and tally.answers >= 40 and tally.reconnects > 0
    assert tally.interrupted > 0  # the kill cut answers short (their text must be stored)
    assert tally.clean(), tally
