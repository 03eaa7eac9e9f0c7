"""The admin role (docs/accounts.md "The admin role").

An account is an admin when its email is in `VEDIKA_ADMIN_EMAILS` (compared normalised,
as sign-in compares emails), or when it is the first account created on this server.
"First" is decided by the database, not by counting: `first_account` holds one row
with a constant primary key, and every registration tries to insert it in its own
transaction, so of any number racing exactly one wins (`claim_first`). Everyone else
is a user. Every admin action writes a row to the audit log (`audit`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from vedika.ids import uuid7
from vedika.protocol import utcnow
from vedika.store.dialect import insert_ignore
from vedika.store.tables import admin_audit, first_account

ADMIN = "admin"
USER = "user"
_FIRST_ROW = 1


async def claim_first(conn: AsyncConnection, *, account_id: str) -> bool:
    """Inside a registration's transaction: make `account_id` the first account if no
    account was first yet. True if it won."""
    result = await conn.execute(
        insert_ignore(conn.dialect.name, first_account),
        {"id": _FIRST_ROW, "account_id": account_id, "created_at": utcnow()},
    )
    return bool(result.rowcount)


async def first_account_id(conn: AsyncConnection) -> str | None:
    row = (
        await conn.execute(
            select(first_account.c.account_id).where(first_account.c.id == _FIRST_ROW)
        )
    ).first()
    return row.account_id if row is not None else None


def role(*, email: str, account_id: str, admin_emails: list[str], first_id: str | None) -> str:
    """`admin` or `user`: the rule itself, without the database."""
    if email in admin_emails or (first_id is not None and account_id == first_id):
        return ADMIN
    return USER


async def role_of(
    conn: AsyncConnection, *, email: str, account_id: str, admin_emails: list[str]
) -> str:
    first_id = None if email in admin_emails else await first_account_id(conn)
    return role(email=email, account_id=account_id, admin_emails=admin_emails, first_id=first_id)


async def audit(
    conn: AsyncConnection,
    *,
    admin_account_id: str,
    admin_email: str,
    action: str,
    target: str | None,
    detail: dict[str, Any] | None = None,
) -> str:
    """One row of the admin audit log, inside the action's own transaction (so the
    action and its record commit together or not at all)."""
    entry = uuid7()
    await conn.execute(
        admin_audit.insert().values(
            id=entry,
            admin_account_id=admin_account_id,
            admin_email=admin_email,
            action=action,
            target=target,
            detail=detail,
            created_at=utcnow(),
        )
    )
    return entry


DELETED = "(deleted account)"


async def forget_in_audit(conn: AsyncConnection, *, account_id: str) -> None:
    """An account closes: the audit log keeps what was done and to which id, but no
    longer its email (as admin or as target), inside the deletion's transaction."""
    await conn.execute(
        update(admin_audit)
        .where(admin_audit.c.admin_account_id == account_id)
        .values(admin_email=DELETED)
    )
    rows = (
        await conn.execute(
            select(admin_audit.c.id, admin_audit.c.detail).where(admin_audit.c.target == account_id)
        )
    ).all()
    for row in rows:
        detail = dict(row.detail or {})
        if "email" in detail:
            detail["email"] = DELETED
            await conn.execute(
                update(admin_audit).where(admin_audit.c.id == row.id).values(detail=detail)
            )
