"""The pure rules of accounts: email normalisation, password lengths, Argon2id
verification (a dummy for unknown emails), and the allowance by plan."""

from __future__ import annotations

import pytest

from vedika.credits.plans import ACCOUNT, ANONYMOUS, daily_allowance, plan_of
from vedika.errors import BadRequest
from vedika.identity.accounts import normalise_email
from vedika.identity.passwords import check_rules, hash_password, verify_password
from vedika.ids import account_owner
from vedika.settings import Settings


def test_emails_are_normalised_and_checked() -> None:
    assert normalise_email("  Ana.Lima@Example.ORG\t") == "ana.lima@example.org"
    assert normalise_email("ＡＮＡ@example.org") == "ana@example.org"  # NFKC: full width
    for bad in ("", "ana", "ana@", "@example.org", "a b@example.org", "a@b@example.org"):
        with pytest.raises(BadRequest):
            normalise_email(bad)
    with pytest.raises(BadRequest):
        normalise_email("a" * 250 + "@example.org")


def test_password_lengths() -> None:
    check_rules("eight ch")
    with pytest.raises(BadRequest, match="at least 8"):
        check_rules("seven c")
    with pytest.raises(BadRequest, match="at most 256"):
        check_rules("x" * 257)


async def test_argon2id_verifies_and_unknown_emails_never_match() -> None:
    stored = await hash_password("correct horse")
    assert stored.startswith("$argon2id$")
    assert await verify_password(stored, "correct horse")
    assert not await verify_password(stored, "wrong horse")
    assert not await verify_password(None, "correct horse")  # the dummy hash's work
    assert not await verify_password("not a hash", "correct horse")


def test_allowance_by_plan() -> None:
    settings = Settings(VEDIKA_DAILY_CREDITS=7, VEDIKA_ACCOUNT_DAILY_CREDITS=70)
    owner = account_owner("0190aaaa-0000-7000-8000-000000000000")
    assert daily_allowance(settings, "dev_1") == 7 and plan_of("dev_1") == ANONYMOUS
    assert daily_allowance(settings, owner) == 70 and plan_of(owner) == ACCOUNT
