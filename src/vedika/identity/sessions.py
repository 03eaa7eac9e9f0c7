"""Device sessions (API.md section 1), anonymous or signed in to an account.

A session id is a 256-bit secret; it identifies a device, and, when signed in, an
account. Everything the caller owns (conversations, files, preferences, coins) hangs
off the session's `owner`: the device id while anonymous, the account's owner key once
signed in (vedika.ids.account_owner; docs/accounts.md).

Every request and every socket message looks its session up, so a session found is
kept in memory for CACHE_SECONDS. Nothing here changes a live session, so the only
staleness is a session deleted or changed in the database behind this process's back:
it is refused within CACHE_SECONDS. Expiry is checked on every use, cached or not.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import and_, bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from vedika.ids import account_owner, session_secret
from vedika.protocol import aware, utcnow
from vedika.store.engine import Store
from vedika.store.tables import accounts, device_sessions

ANONYMOUS_PLAN = "anonymous"
CACHE_SECONDS = 2.0
CACHE_MAX = 10_000

_SHAPE = re.compile(r"[A-Za-z0-9_-]+")  # session_secret(): URL-safe base64
# With its account's `disabled_at` (NULL for anonymous sessions and enabled accounts):
# one primary-key join, so every check of a session sees a disabled account.
_FIND = (
    select(device_sessions, accounts.c.disabled_at)
    .select_from(device_sessions.outerjoin(accounts, accounts.c.id == device_sessions.c.account_id))
    .where(device_sessions.c.session_id == bindparam("b_id"))
)
_CREATE = device_sessions.insert()
# Per store (a test process may open several databases): session id -> (found at, session).
_found: WeakKeyDictionary[Store, dict[str, tuple[float, DeviceSession]]] = WeakKeyDictionary()


@dataclass(frozen=True, slots=True)
class DeviceSession:
    session_id: str
    device_id: str
    plan: str
    created_at: datetime
    expires_at: datetime
    client_device_id: str | None = None  # the id its client asked for (see devices.py)
    account_id: str | None = None  # signed in to this account; None: anonymous
    disabled: bool = False  # its account is disabled by an admin (refused everywhere)

    @property
    def owner(self) -> str:
        """The key everything this session may see and spend is stored under."""
        return account_owner(self.account_id) if self.account_id else self.device_id

    @property
    def handle(self) -> str:
        """A name for this session that is not its secret (the sessions list)."""
        return public_handle(self.session_id)

    def names(self, device_id: str) -> bool:
        """Whether a device id a client sends along names this session's device."""
        return device_id in (self.device_id, self.client_device_id)


async def insert_session(
    conn: AsyncConnection,
    *,
    ttl_days: int,
    device_id: str,
    client_device_id: str | None = None,
    device_info: dict[str, Any] | None = None,
    account_id: str | None = None,
    plan: str = ANONYMOUS_PLAN,
) -> DeviceSession:
    """A new session for `device_id` (signed in to `account_id`, if given), inside the
    caller's transaction (the device is decided first, by
    vedika.identity.devices.bind). Signing in makes a new session rather than changing
    one: nothing here changes a live session (the cache above relies on it), and a
    session id planted before sign-in never becomes the account's."""
    now = utcnow()
    row = DeviceSession(
        session_id=session_secret(),
        device_id=device_id,
        plan=plan,
        created_at=now,
        expires_at=now + timedelta(days=ttl_days),
        client_device_id=client_device_id,
        account_id=account_id,
    )
    await conn.execute(
        _CREATE,
        {
            "session_id": row.session_id,
            "device_id": row.device_id,
            "client_device_id": client_device_id,
            "account_id": account_id,
            "plan": row.plan,
            "device_info": device_info,
            "created_at": row.created_at,
            "expires_at": row.expires_at,
        },
    )
    return row


async def find_session(store: Store, *, session_id: str) -> DeviceSession | None:
    """The live session with this id, or None when unknown or expired."""
    if not session_id or len(session_id) > 64 or not _SHAPE.fullmatch(session_id):
        return None  # not one of ours (and never sent to the database: NUL, surrogates)
    cache = _found.setdefault(store, {})
    hit = cache.get(session_id)
    if hit is not None:
        found_at, session = hit
        if time.monotonic() - found_at < CACHE_SECONDS and session.expires_at > utcnow():
            return session
        del cache[session_id]
    found_at = time.monotonic()
    async with store.read() as conn:
        row = (await conn.execute(_FIND, {"b_id": session_id})).first()
    if row is None:
        return None
    expires_at = aware(row.expires_at)
    if expires_at <= utcnow():
        return None
    session = DeviceSession(
        session_id=row.session_id,
        device_id=row.device_id,
        plan=row.plan,
        created_at=aware(row.created_at),
        expires_at=expires_at,
        client_device_id=row.client_device_id,
        account_id=row.account_id,
        disabled=row.disabled_at is not None,
    )
    while len(cache) >= CACHE_MAX:  # the oldest go first (dicts keep insertion order)
        cache.pop(next(iter(cache)))
    cache[session_id] = (found_at, session)
    return session


def public_handle(session_id: str) -> str:
    """A stable, non-secret name for a session: a prefix of its id's SHA-256."""
    return hashlib.sha256(session_id.encode()).hexdigest()[:24]


def forget_account(store: Store, account_id: str) -> None:
    """Drop an account's sessions from this process's cache (it was disabled or
    enabled just now; other processes see it within CACHE_SECONDS)."""
    cache = _found.get(store, {})
    for sid in [sid for sid, (_, s) in cache.items() if s.account_id == account_id]:
        cache.pop(sid, None)


def forget(store: Store, session_ids: list[str]) -> None:
    """Drop sessions deleted just now from this process's cache (other processes
    refuse them within CACHE_SECONDS)."""
    cache = _found.get(store, {})
    for sid in session_ids:
        cache.pop(sid, None)


async def account_sessions(conn: AsyncConnection, *, account_id: str) -> list[Any]:
    """The live sessions signed in to an account, newest first."""
    rows = await conn.execute(
        select(device_sessions)
        .where(
            and_(
                device_sessions.c.account_id == account_id,
                device_sessions.c.expires_at > utcnow(),
            )
        )
        .order_by(device_sessions.c.created_at.desc())
    )
    return list(rows.all())


async def delete_sessions(conn: AsyncConnection, *, session_ids: list[str]) -> int:
    if not session_ids:
        return 0
    result = await conn.execute(
        delete(device_sessions).where(device_sessions.c.session_id.in_(session_ids))
    )
    return result.rowcount or 0


async def delete_expired(store: Store) -> int:
    async with store.tx() as conn:
        result = await conn.execute(
            delete(device_sessions).where(device_sessions.c.expires_at <= utcnow())
        )
    return result.rowcount or 0
