"""API keys: an account's credentials for programs (issue 19; docs/api.md).

A key is `vk_` + 256 random bits (URL-safe base64), shown once when created; only its
SHA-256 is stored. Sent as `Authorization: Bearer vk_...`, a key acts as its account
everywhere a signed-in session would (coins, limits, ownership): `as_session` gives the
DeviceSession it stands for.

Every request looks its key up, so a key found is kept in memory for CACHE_SECONDS (a
revoked key is refused at once here, and by other processes within CACHE_SECONDS).
`last_used_at` is written at most once a minute per key, never per request.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import and_, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from vedika.errors import Unauthorized
from vedika.identity.sessions import DeviceSession
from vedika.ids import uuid7
from vedika.protocol import aware, utcnow
from vedika.store.engine import Store
from vedika.store.tables import accounts, api_keys

PREFIX = "vk_"
CACHE_SECONDS = 5.0
CACHE_MAX = 10_000
TOUCH_SECONDS = 60.0
PREFIX_SHOWN = 10  # `vk_` and 7 characters of the secret, for people to tell keys apart
_SHAPE = re.compile(r"vk_[A-Za-z0-9_-]{43}")
_FOREVER = timedelta(days=36500)


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    account_id: str
    plan: str
    name: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    disabled: bool = False  # its account is disabled by an admin: refused like a session

    def as_session(self) -> DeviceSession:
        """The signed-in session this key stands for: the account's owner key, its plan.
        Its `device_id` names the key (`apikey:<id>`), never a real device."""
        return DeviceSession(
            session_id=f"apikey:{self.id}",
            device_id=f"apikey:{self.id}",
            plan=self.plan,
            created_at=self.created_at,
            expires_at=self.expires_at or self.created_at + _FOREVER,
            account_id=self.account_id,
            disabled=self.disabled,
        )


def new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# Per store: secret hash -> (found at, key).
_found: WeakKeyDictionary[Store, dict[str, tuple[float, ApiKey]]] = WeakKeyDictionary()
# Per store: key id -> when this process last wrote its last_used_at (monotonic).
_touched: WeakKeyDictionary[Store, dict[str, float]] = WeakKeyDictionary()


async def create_key(
    conn: AsyncConnection, *, account_id: str, name: str, expires_in_days: int | None
) -> tuple[dict[str, Any], str]:
    """A new key's row (as listed) and its secret, inside the caller's transaction."""
    secret = new_secret()
    now = utcnow()
    row = {
        "id": uuid7(),
        "account_id": account_id,
        "name": name,
        "prefix": secret[:PREFIX_SHOWN],
        "secret_hash": digest(secret),
        "created_at": now,
        "expires_at": now + timedelta(days=expires_in_days) if expires_in_days else None,
        "last_used_at": None,
        "revoked_at": None,
    }
    await conn.execute(api_keys.insert().values(**row))
    return row, secret


async def list_keys(conn: AsyncConnection, *, account_id: str) -> list[Any]:
    """The account's keys that are not revoked, newest first (expired ones included)."""
    rows = await conn.execute(
        select(api_keys)
        .where(and_(api_keys.c.account_id == account_id, api_keys.c.revoked_at.is_(None)))
        .order_by(api_keys.c.created_at.desc())
    )
    return list(rows.all())


async def count_live(conn: AsyncConnection, *, account_id: str) -> int:
    now = utcnow()
    return sum(
        1
        for r in await list_keys(conn, account_id=account_id)
        if r.expires_at is None or aware(r.expires_at) > now
    )


async def delete_keys(conn: AsyncConnection, *, account_id: str) -> None:
    """Every key of an account that is being closed (inside the caller's transaction)."""
    await conn.execute(delete(api_keys).where(api_keys.c.account_id == account_id))


def forget_account(store: Store, account_id: str) -> None:
    """Drop the account's keys from this process's cache (it was disabled or enabled):
    the next use reads them again. Other instances see it within CACHE_SECONDS."""
    cache = _found.get(store, {})
    for h in [h for h, (_, k) in cache.items() if k.account_id == account_id]:
        del cache[h]


async def revoke_key(store: Store, *, account_id: str, key_id: str) -> bool:
    """Revoke one of the account's keys; False when it has no such live key."""
    async with store.tx() as conn:
        result = await conn.execute(
            update(api_keys)
            .where(
                and_(
                    api_keys.c.id == key_id,
                    api_keys.c.account_id == account_id,
                    api_keys.c.revoked_at.is_(None),
                )
            )
            .values(revoked_at=utcnow())
        )
    cache = _found.get(store, {})
    for h in [h for h, (_, k) in cache.items() if k.id == key_id]:
        del cache[h]
    return bool(result.rowcount)


async def find_key(store: Store, secret: str) -> ApiKey:
    """The key with this secret, live; Unauthorized (with a code saying why) if not."""
    if not _SHAPE.fullmatch(secret):
        raise Unauthorized("That API key is not one this server issued.", code="invalid_api_key")
    hashed = digest(secret)
    cache = _found.setdefault(store, {})
    hit = cache.get(hashed)
    key: ApiKey | None = None
    if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
        key = hit[1]
    if key is None:
        found_at = time.monotonic()
        async with store.read() as conn:
            row = (
                await conn.execute(
                    select(api_keys, accounts.c.plan, accounts.c.disabled_at)
                    .join(accounts, accounts.c.id == api_keys.c.account_id)
                    .where(api_keys.c.secret_hash == hashed)
                )
            ).first()
        if row is None:
            cache.pop(hashed, None)
            raise Unauthorized(
                "That API key is not one this server issued.", code="invalid_api_key"
            )
        key = ApiKey(
            id=row.id,
            account_id=row.account_id,
            plan=row.plan,
            name=row.name,
            created_at=aware(row.created_at),
            expires_at=aware(row.expires_at) if row.expires_at else None,
            revoked_at=aware(row.revoked_at) if row.revoked_at else None,
            disabled=row.disabled_at is not None,
        )
        while len(cache) >= CACHE_MAX:
            cache.pop(next(iter(cache)))
        cache[hashed] = (found_at, key)
    if key.revoked_at is not None:
        raise Unauthorized("This API key was revoked.", code="api_key_revoked")
    if key.expires_at is not None and key.expires_at <= utcnow():
        raise Unauthorized("This API key has expired.", code="api_key_expired")
    await _touch(store, key.id)
    return key


async def _touch(store: Store, key_id: str) -> None:
    """Write `last_used_at`, at most once a minute per key from this process."""
    touched = _touched.setdefault(store, {})
    now = time.monotonic()
    last = touched.get(key_id)
    if last is not None and now - last < TOUCH_SECONDS:
        return
    while len(touched) >= CACHE_MAX:
        touched.pop(next(iter(touched)))
    touched[key_id] = now
    async with store.tx() as conn:
        await conn.execute(
            update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=utcnow())
        )


async def session_for(store: Store, secret: str) -> DeviceSession:
    """The credential kind `vk_` (vedika.api.deps): the session a key stands for."""
    return (await find_key(store, secret)).as_session()
