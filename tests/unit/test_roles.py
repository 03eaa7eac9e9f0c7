"""The admin role's rules: admin emails from the setting (normalised like sign-in),
the first account claimed once however many registrations race, the audit row, and
reset tokens (single use, expiry) on a real SQLite database."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from vedika.identity import resets, roles
from vedika.identity.accounts import normalise_email
from vedika.protocol import utcnow
from vedika.settings import Settings, SettingsError, load_settings
from vedika.store.tables import admin_audit, first_account, metadata, password_resets


def test_admin_emails_are_normalised_like_sign_in() -> None:
    s = Settings(VEDIKA_ADMIN_EMAILS=" Ana@Example.org, ,ＢＯＢ@example.org ")
    assert s.admin_emails == ["ana@example.org", "bob@example.org"]
    assert normalise_email("  ANA@example.org") in s.admin_emails
    assert Settings().admin_emails == []


def test_the_rule() -> None:
    admins = ["boss@example.org"]
    assert (
        roles.role(email="boss@example.org", account_id="a", admin_emails=admins, first_id=None)
        == roles.ADMIN
    )
    assert (
        roles.role(email="x@example.org", account_id="a", admin_emails=admins, first_id="a")
        == roles.ADMIN
    )
    assert (
        roles.role(email="x@example.org", account_id="b", admin_emails=admins, first_id="a")
        == roles.USER
    )
    assert (
        roles.role(email="x@example.org", account_id="b", admin_emails=[], first_id=None)
        == roles.USER
    )


def test_mail_settings() -> None:
    assert not Settings().mail_enabled
    s = Settings(VEDIKA_SMTP_HOST=" mail.example.org ", VEDIKA_PUBLIC_URL="https://v.example/")
    assert s.mail_enabled and s.smtp_host == "mail.example.org"
    assert s.public_url == "https://v.example"
    assert not Settings(VEDIKA_SMTP_HOST="  ").mail_enabled
    with pytest.raises(SettingsError, match="VEDIKA_SMTP_TLS"):
        load_settings(VEDIKA_SMTP_TLS="ssl")
    with pytest.raises(SettingsError, match="VEDIKA_PUBLIC_URL"):
        load_settings(VEDIKA_PUBLIC_URL="vedika.example.org")
    assert "hunter2" not in str(Settings(VEDIKA_SMTP_PASSWORD="hunter2").masked())


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncEngine:
    eng = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'r.db'}")
    async with eng.begin() as conn:
        await conn.run_sync(metadata.create_all)
    return eng


async def test_first_account_is_claimed_once_by_racing_registrations(
    engine: AsyncEngine,
) -> None:
    async def register(i: int) -> bool:
        async with engine.begin() as conn:
            return await roles.claim_first(conn, account_id=f"acct-{i}")

    won = await asyncio.gather(*(register(i) for i in range(8)))
    assert sum(won) == 1
    async with engine.connect() as conn:
        first = await roles.first_account_id(conn)
        rows = (await conn.execute(select(first_account))).all()
        assert len(rows) == 1 and first == f"acct-{won.index(True)}"
        assert (
            await roles.role_of(conn, email="x@example.org", account_id=first, admin_emails=[])
            == roles.ADMIN
        )
        assert (
            await roles.role_of(conn, email="x@example.org", account_id="other", admin_emails=[])
            == roles.USER
        )
    await engine.dispose()


async def test_audit_rows(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        entry = await roles.audit(
            conn,
            admin_account_id="a",
            admin_email="boss@example.org",
            action="grant_coins",
            target="b",
            detail={"amount": 5},
        )
    async with engine.connect() as conn:
        row = (await conn.execute(select(admin_audit))).one()
    assert row.id == entry and row.action == "grant_coins" and row.detail == {"amount": 5}
    await engine.dispose()


async def test_reset_tokens_work_once_and_expire(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        token = await resets.create(conn, account_id="a", minutes=30)
        stale = await resets.create(conn, account_id="a", minutes=30)
    async with engine.connect() as conn:
        stored = (await conn.execute(select(password_resets.c.token_hash))).scalars().all()
    assert token not in stored and resets.token_hash(token) in stored  # only its hash

    async def use(t: str) -> str | None:
        async with engine.begin() as conn:
            return await resets.consume(conn, token=t)

    assert [await use(token), await use(token)] == ["a", None]
    async with engine.begin() as conn:
        await conn.execute(
            update(password_resets).values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert await use(stale) is None
    assert await use("") is None and await use("x" * 500) is None
    async with engine.begin() as conn:  # a new token sweeps the used and expired ones
        fresh = await resets.create(conn, account_id="a", minutes=30)
    async with engine.connect() as conn:
        left = (await conn.execute(select(password_resets.c.token_hash))).scalars().all()
    assert left == [resets.token_hash(fresh)]
    await engine.dispose()
