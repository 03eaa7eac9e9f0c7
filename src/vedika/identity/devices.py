"""Which device a new session belongs to: a device id names a device, it does not
prove holding it.

A device is created with a 256-bit secret, returned once in the session object
(`device_secret`, for API clients) and kept in an HttpOnly cookie (for the pages);
only its SHA-256 is stored (the secret is random, so a slow hash adds nothing).
Re-binding an existing device to a new session needs one proof:

- its secret (`device_secret` in the body, or the device cookie), or
- a live session of that device on the same request (bearer or session cookie).

Without proof the caller gets a new, empty device. The id it asked for is kept on its
session as `client_device_id`, so a client that keeps sending its own id (the original
web client does, on every call) still matches its session; nothing of the old
device is reachable through it. Devices from before migration 0004 have no secret:
only a live session can re-bind them, and that issues one.

`VEDIKA_TRUST_DEVICE_IDS=true` restores the old rule (the id alone re-binds) for a
trusted network; it is off by default (docs/security.md).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from vedika.ids import session_secret, uuid7
from vedika.protocol import utcnow
from vedika.store.dialect import insert_ignore
from vedika.store.tables import devices

DEVICE_COOKIE = "vedika_device"
# What a device id may look like (protocol.DeviceSessionRequest's pattern): never an
# account's owner key (vedika.ids.account_owner has an "@"), whatever a cookie says.
_DEVICE_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")

_FIND = select(devices.c.secret_hash).where(devices.c.device_id == bindparam("b_id"))
_SET_SECRET = (
    update(devices)
    .where(devices.c.device_id == bindparam("b_id"))
    .values(secret_hash=bindparam("b_hash"))
)
_ADD = {dialect: insert_ignore(dialect, devices) for dialect in ("sqlite", "postgresql")}


@dataclass(frozen=True, slots=True)
class Proof:
    """What a request offers to show it holds a device."""

    asked: str | None = None  # the device id in the body
    secret: str | None = None  # `device_secret` in the body
    cookie: str | None = None  # the device cookie: "<device_id>.<secret>"
    live_device: str | None = None  # the device of a live session sent along


@dataclass(frozen=True, slots=True)
class Binding:
    device_id: str
    secret: str | None  # a secret known to be this device's (for the cookie), if any
    issued: bool  # `secret` was made just now: return it once
    client_device_id: str | None  # the id asked for, when a new device was made instead


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def cookie_value(device_id: str, secret: str) -> str:
    return f"{device_id}.{secret}"


def _from_cookie(value: str | None) -> tuple[str, str] | None:
    if not value or len(value) > 300:
        return None
    device_id, _, secret = value.rpartition(".")  # secrets are URL-safe base64: no dot
    return (device_id, secret) if _DEVICE_ID.fullmatch(device_id) and secret else None


def _matches(secret: str | None, stored: str | None) -> bool:
    return bool(secret and stored) and hmac.compare_digest(hash_secret(secret or ""), stored or "")


async def bind(conn: AsyncConnection, proof: Proof, *, trust_ids: bool = False) -> Binding:
    """The device for a new session, inside the caller's transaction."""
    asked, secret = proof.asked, proof.secret
    cookie = _from_cookie(proof.cookie)
    if cookie is not None and asked in (None, cookie[0]):
        asked, secret = cookie[0], secret or cookie[1]
    if asked is None:
        return await _new(conn, f"dev_{uuid7()}", client_device_id=None)
    row = (await conn.execute(_FIND, {"b_id": asked})).first()
    if row is None:
        fresh = await _new(conn, asked, client_device_id=None)
        if fresh.device_id == asked:
            return fresh
        row = (await conn.execute(_FIND, {"b_id": asked})).first()  # created meanwhile
    stored = row.secret_hash if row is not None else None
    if _matches(secret, stored):
        return Binding(asked, secret, issued=False, client_device_id=None)
    if trust_ids or proof.live_device == asked:
        if stored is not None:
            return Binding(asked, None, issued=False, client_device_id=None)
        issued = session_secret()  # a device from before secrets: give it one now
        await conn.execute(_SET_SECRET, {"b_id": asked, "b_hash": hash_secret(issued)})
        return Binding(asked, issued, issued=True, client_device_id=None)
    return await _new(conn, f"dev_{uuid7()}", client_device_id=asked)


async def _new(conn: AsyncConnection, device_id: str, *, client_device_id: str | None) -> Binding:
    """A new device with a new secret; if `device_id` was taken meanwhile, the Binding
    names no secret and the caller decides."""
    secret = session_secret()
    result = await conn.execute(
        _ADD[conn.dialect.name],
        {"device_id": device_id, "secret_hash": hash_secret(secret), "created_at": utcnow()},
    )
    if not result.rowcount:
        return Binding("", None, issued=False, client_device_id=None)
    return Binding(device_id, secret, issued=True, client_device_id=client_device_id)
