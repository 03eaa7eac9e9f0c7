"""turns.Accepting: when a turn's model call may go out before the turn is stored."""

from __future__ import annotations

from vedika.chat.turns import Accepting


def test_a_lone_turn_may_start_early() -> None:
    acc = Accepting()
    ticket = acc.begin("d")
    assert acc.alone("d", ticket)
    acc.end("d")


def test_a_turn_that_began_beside_a_sibling_never_may() -> None:
    """Even after the sibling ends: it may have committed after this turn's reads."""
    acc = Accepting()
    first = acc.begin("d")
    second = acc.begin("d")
    assert not acc.alone("d", second)
    assert not acc.alone("d", first)  # a newcomer began after it: its reads may be stale
    acc.end("d")  # the first one is stored...
    assert not acc.alone("d", second)  # ...and the second still stays on the ordinary path
    acc.end("d")
    assert acc.alone("d", acc.begin("d"))  # a later lone turn may again


def test_devices_do_not_affect_each_other() -> None:
    acc = Accepting()
    mine = acc.begin("a")
    acc.begin("b")
    assert acc.alone("a", mine)
