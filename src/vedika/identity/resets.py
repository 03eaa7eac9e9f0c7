"""Password reset tokens (docs/accounts.md "Email").

A token is 256 random bits, sent only in the mail; the database keeps its SHA-256, so
a copy of the database resets nothing. A token is used at most once (one conditional
UPDATE marks it used and returns its account, so two uses racing get one account
between them) and only before it expires.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import and_, delete, update
from sqlalchemy.ext.asyncio import AsyncConnection

from vedika.ids import session_secret
from vedika.protocol import utcnow
from vedika.store.tables import accounts, password_resets

MAX_TOKEN = 64  # session_secret(): 43 characters


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create(conn: AsyncConnection, *, account_id: str, minutes: int) -> str:
    """A new token for `account_id`, valid for `minutes`; the account's expired or used
    tokens go."""
    now = utcnow()
    await conn.execute(
        delete(password_resets).where(
            and_(
                password_resets.c.account_id == account_id,
                (password_resets.c.expires_at <= now) | password_resets.c.used_at.is_not(None),
            )
        )
    )
    token = session_secret()
    await conn.execute(
        password_resets.insert().values(
            token_hash=token_hash(token),
            account_id=account_id,
            created_at=now,
            expires_at=now + timedelta(minutes=minutes),
        )
    )
    return token


async def consume(conn: AsyncConnection, *, token: str) -> str | None:
    """The account of a live, unused token, which is used up by this; else None."""
    if not token or len(token) > MAX_TOKEN:
        return None
    now = utcnow()
    row = (
        await conn.execute(
            update(password_resets)
            .where(
                and_(
                    password_resets.c.token_hash == token_hash(token),
                    password_resets.c.used_at.is_(None),
                    password_resets.c.expires_at > now,
                )
            )
            .values(used_at=now)
            .returning(password_resets.c.account_id)
        )
    ).first()
    return row.account_id if row is not None else None


async def set_password(conn: AsyncConnection, *, account_id: str, password_hash: str) -> None:
    await conn.execute(
        update(accounts).where(accounts.c.id == account_id).values(password_hash=password_hash)
    )


async def delete_for(conn: AsyncConnection, *, account_id: str) -> None:
    """Every token of an account (it is being deleted)."""
    await conn.execute(delete(password_resets).where(password_resets.c.account_id == account_id))
