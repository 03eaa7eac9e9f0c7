"""Which database failures an answer's ending is stored again after (store.engine)."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, TimeoutError

from vedika.store.engine import transient


def test_a_database_away_is_worth_another_try() -> None:
    assert transient(ConnectionRefusedError(111, "Connection refused"))
    assert transient(OperationalError("UPDATE", {}, Exception("server closed the connection")))
    assert transient(DBAPIError("connect", {}, Exception("too many clients already")))
    assert transient(TimeoutError("QueuePool limit reached"))


def test_a_failure_of_the_statement_itself_is_not() -> None:
    assert not transient(IntegrityError("INSERT", {}, Exception("duplicate key")))
    assert not transient(ValueError("not a database error"))
