"""Anonymous device sessions (API.md section 1).

A session id is a 256-bit secret; it identifies a device. Everything a device owns
(conversations, files, preferences, coins) hangs off its `device_id`.

Every request and every socket message looks its session up, so a session found is
kept in memory for CACHE_SECONDS. Nothing here changes a live session, so the only
staleness is a session deleted or changed in the database behind this process's back:
it is refused within CACHE_SECONDS. Expiry is checked on every use, cached or not.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from vedika.ids import session_secret
from vedika.protocol import aware, utcnow
from vedika.store.engine import Store
from vedika.store.tables import device_sessions

ANONYMOUS_PLAN = "anonymous"
CACHE_SECONDS = 2.0
CACHE_MAX = 10_000

_SHAPE = re.compile(r"[A-Za-z0-9_-]+")  # session_secret(): URL-safe base64
_FIND = select(device_sessions).where(device_sessions.c.session_id == bindparam("b_id"))
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
) -> DeviceSession:
    """A new session for `device_id`, inside the caller's transaction (the device is
    decided first, by vedika.identity.devices.bind)."""
    now = utcnow()
    row = DeviceSession(
        session_id=session_secret(),
        device_id=device_id,
        plan=ANONYMOUS_PLAN,
        created_at=now,
        expires_at=now + timedelta(days=ttl_days),
        client_device_id=client_device_id,
    )
    await conn.execute(
        _CREATE,
        {
            "session_id": row.session_id,
            "device_id": row.device_id,
            "client_device_id": client_device_id,
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
    )
    while len(cache) >= CACHE_MAX:  # the oldest go first (dicts keep insertion order)
        cache.pop(next(iter(cache)))
    cache[session_id] = (found_at, session)
    return session


async def delete_expired(store: Store) -> int:
    async with store.tx() as conn:
        result = await conn.execute(
            delete(device_sessions).where(device_sessions.c.expires_at <= utcnow())
        )
    return result.rowcount or 0
