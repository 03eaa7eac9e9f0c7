"""Who a (provider, subject) is, and the sign-in flows begun (tables of migration 0007).

An identity signs in to exactly one account. It is created by a first sign-in (with a
new account) or by connecting it to an account signed in with its password, and never
by an email alone: an email is the provider's word, an account's is ours.

A flow is kept server-side from the start to the callback, under the SHA-256 of its
`state`, with the SHA-256 of a secret cookie of the browser that started it: an answer
comes back to the browser that asked, once, before it expires (`take`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from vedika.protocol import aware, iso, utcnow
from vedika.store.tables import oidc_flows, oidc_identities


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Flow:
    provider: str
    verifier: str
    nonce: str
    next_path: str
    account_id: str | None  # set when connecting an identity to this account
    browser_hash: str
    expires_at: datetime


async def save_flow(
    conn: AsyncConnection,
    *,
    state: str,
    browser: str,
    provider: str,
    verifier: str,
    nonce: str,
    next_path: str,
    account_id: str | None,
    ttl_seconds: int,
) -> None:
    now = utcnow()
    await conn.execute(delete(oidc_flows).where(oidc_flows.c.expires_at < now))
    await conn.execute(
        oidc_flows.insert().values(
            state_hash=digest(state),
            browser_hash=digest(browser),
            provider=provider,
            verifier=verifier,
            nonce=nonce,
            next_path=next_path,
            account_id=account_id,
            expires_at=now + timedelta(seconds=ttl_seconds),
        )
    )


async def take_flow(conn: AsyncConnection, *, state: str) -> Flow | None:
    """The flow of `state`, deleted (a state answers once); None if there is none."""
    key = digest(state)
    row = (await conn.execute(select(oidc_flows).where(oidc_flows.c.state_hash == key))).first()
    if row is None:
        return None
    gone = await conn.execute(delete(oidc_flows).where(oidc_flows.c.state_hash == key))
    if gone.rowcount != 1:  # another callback with the same state took it
        return None
    return Flow(
        provider=row.provider,
        verifier=row.verifier,
        nonce=row.nonce,
        next_path=row.next_path,
        account_id=row.account_id,
        browser_hash=row.browser_hash,
        expires_at=aware(row.expires_at),
    )


async def account_of(conn: AsyncConnection, *, provider: str, subject: str) -> str | None:
    """The account this identity signs in to, and note its use."""
    row = (
        await conn.execute(
            select(oidc_identities.c.account_id).where(
                oidc_identities.c.provider == provider, oidc_identities.c.subject == subject
            )
        )
    ).first()
    if row is None:
        return None
    await conn.execute(
        update(oidc_identities)
        .where(oidc_identities.c.provider == provider, oidc_identities.c.subject == subject)
        .values(last_used_at=utcnow())
    )
    return str(row.account_id)


async def link(
    conn: AsyncConnection, *, provider: str, subject: str, account_id: str, email: str | None
) -> None:
    now = utcnow()
    await conn.execute(
        oidc_identities.insert().values(
            provider=provider,
            subject=subject,
            account_id=account_id,
            email=email,
            created_at=now,
            last_used_at=now,
        )
    )


async def of_account(conn: AsyncConnection, *, account_id: str) -> list[dict[str, str | None]]:
    """The identities that sign in to the account (for `GET /auth/me`)."""
    rows = await conn.execute(
        select(oidc_identities)
        .where(oidc_identities.c.account_id == account_id)
        .order_by(oidc_identities.c.created_at)
    )
    return [
        {"provider": r.provider, "email": r.email, "connected_at": iso(aware(r.created_at))}
        for r in rows
    ]


async def forget_account(conn: AsyncConnection, *, account_id: str) -> None:
    """An account closed: its identities go with it."""
    await conn.execute(delete(oidc_identities).where(oidc_identities.c.account_id == account_id))
    await conn.execute(delete(oidc_flows).where(oidc_flows.c.account_id == account_id))
