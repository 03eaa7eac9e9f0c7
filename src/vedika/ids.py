"""Identifiers: sortable UUIDv7 for records, 256-bit secrets for sessions."""

from __future__ import annotations

import itertools
import os
import secrets
import time


def uuid7() -> str:
    """A UUIDv7 string: 48-bit millisecond time, then 74 random bits (RFC 9562).

    Sortable by creation time and unguessable (the random part is from os.urandom),
    so it is safe as an id that grants access only together with a session.
    """
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= ((rand >> 62) & 0xFFF) << 64  # rand_a (12 bits)
    value |= 0b10 << 62  # variant
    value |= rand & ((1 << 62) - 1)  # rand_b (62 bits)
    h = f"{value:032x}"  # what str(uuid.UUID(int=value)) gives, at a third of its cost
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def session_secret() -> str:
    """A session id: 256 random bits, URL-safe. Never with `_` third (drawn again):
    prefixes like `vk_` mark other kinds of credential (vedika.api.deps)."""
    while True:
        sid = secrets.token_urlsafe(32)
        if sid[2] != "_":
            return sid


_REQUESTS = itertools.count(1)
_PROCESS = secrets.token_hex(4)  # a new one per process: ids of two instances never meet


def request_id() -> str:
    """An id for one request's log lines and `x-request-id`: unique, not secret (it
    grants nothing), so a counter behind a per-process prefix; a uuid7's random bytes
    were a system call on every request."""
    return f"{_PROCESS}-{next(_REQUESTS):x}"


# What owns conversations, files and coins is an *owner key*: a device's id while it is
# anonymous, this for an account (docs/accounts.md). Device ids never contain "@" (the
# request pattern refuses it, vedika.identity.devices checks the cookie's), so no device
# can be named like an account.
ACCOUNT_OWNER_PREFIX = "account@"


def account_owner(account_id: str) -> str:
    """The owner key of an account."""
    return f"{ACCOUNT_OWNER_PREFIX}{account_id}"


def is_account_owner(owner: str) -> bool:
    return owner.startswith(ACCOUNT_OWNER_PREFIX)
