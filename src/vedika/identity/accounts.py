"""Accounts: an email, a password hash, a name and a plan (docs/accounts.md).

Emails are compared normalised (trimmed, NFKC, lower case), so `Ana@Example.org ` and
`ana@example.org` are one account. What an account owns is stored under its owner key
(vedika.ids.account_owner), exactly as a device's is under its device id.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from vedika.errors import BadRequest, Conflict
from vedika.ids import uuid7
from vedika.protocol import aware, utcnow
from vedika.store.tables import accounts

MAX_EMAIL = 254  # RFC 5321's path limit
# Deliberately loose: one "@", something on each side, a dot in the domain, no spaces.
# Whether the address receives mail is for a confirmation email (not built yet).
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    email: str
    name: str | None
    plan: str
    created_at: datetime
    password_hash: str
    disabled_at: datetime | None = None


def normalise_email(raw: str) -> str:
    email = unicodedata.normalize("NFKC", raw).strip().lower()
    if len(email) > MAX_EMAIL or not _EMAIL.fullmatch(email):
        raise BadRequest("That is not an email address.", code="invalid_email")
    return email


def _account(row: object) -> Account:
    return Account(
        id=row.id,  # type: ignore[attr-defined]
        email=row.email,  # type: ignore[attr-defined]
        name=row.name,  # type: ignore[attr-defined]
        plan=row.plan,  # type: ignore[attr-defined]
        created_at=aware(row.created_at),  # type: ignore[attr-defined]
        password_hash=row.password_hash,  # type: ignore[attr-defined]
        disabled_at=aware(row.disabled_at) if row.disabled_at else None,  # type: ignore[attr-defined]
    )


async def create_account(
    conn: AsyncConnection, *, email: str, name: str | None, password_hash: str, plan: str
) -> Account:
    """A new account inside the caller's transaction; 409 when the email is taken (a
    race between two registrations ends in IntegrityError: see `email_taken`)."""
    if await find_by_email(conn, email=email) is not None:
        raise email_taken()
    account = Account(uuid7(), email, name, plan, utcnow(), password_hash)
    await conn.execute(
        accounts.insert().values(
            id=account.id,
            email=email,
            name=name,
            password_hash=password_hash,
            plan=plan,
            created_at=account.created_at,
        )
    )
    return account


def email_taken() -> Conflict:
    return Conflict(
        "An account with this email already exists. Sign in instead.", code="email_taken"
    )


async def find_by_email(conn: AsyncConnection, *, email: str) -> Account | None:
    row = (await conn.execute(select(accounts).where(accounts.c.email == email))).first()
    return _account(row) if row is not None else None


async def find_by_id(conn: AsyncConnection, *, account_id: str) -> Account | None:
    row = (await conn.execute(select(accounts).where(accounts.c.id == account_id))).first()
    return _account(row) if row is not None else None


async def delete_account(conn: AsyncConnection, *, account_id: str) -> None:
    await conn.execute(delete(accounts).where(accounts.c.id == account_id))
