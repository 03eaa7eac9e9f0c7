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
