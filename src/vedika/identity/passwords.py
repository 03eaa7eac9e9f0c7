"""Password hashing: Argon2id (argon2-cffi, RFC 9106's low-memory parameters).

Hashing costs about 64 MiB and tens of milliseconds of CPU on purpose, so it runs in a
thread (the event loop keeps serving) and at most HASHING_AT_ONCE at a time: a burst
of sign-ins waits instead of taking the machine's memory. A sign-in for an unknown
email verifies against a dummy hash, so it costs what a wrong password costs and the
two cannot be told apart by timing.
"""

from __future__ import annotations

import asyncio
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from vedika.errors import BadRequest

MIN_LENGTH = 8
# Argon2 takes any length, but a bound keeps the request (and the hash's input) small.
MAX_LENGTH = 256
HASHING_AT_ONCE = 2

_hasher = PasswordHasher()  # Argon2id, t=3, m=64 MiB, p=4 (argon2-cffi's defaults)
_gate: asyncio.Semaphore | None = None


def check_rules(password: str) -> None:
    """Length only (NIST SP 800-63B): long passphrases welcome, no composition rules."""
    if len(password) < MIN_LENGTH:
        raise BadRequest(
            f"A password needs at least {MIN_LENGTH} characters.", code="password_too_short"
        )
    if len(password) > MAX_LENGTH:
        raise BadRequest(
            f"A password may have at most {MAX_LENGTH} characters.", code="password_too_long"
        )


def _semaphore() -> asyncio.Semaphore:
    global _gate
    if _gate is None:
        _gate = asyncio.Semaphore(HASHING_AT_ONCE)
    return _gate


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher.hash("a password nobody has: it only spends the time of a real check")


def _verify(stored: str | None, password: str) -> bool:
    stored = stored or None  # "": an account with no password (single sign-on only)
    try:
        return _hasher.verify(stored or _dummy_hash(), password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def hash_password(password: str) -> str:
    async with _semaphore():
        return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(stored: str | None, password: str) -> bool:
    """Whether `password` matches `stored`; with no stored hash (an unknown email) the
    same work is done against a dummy and the answer is False."""
    async with _semaphore():
        return await asyncio.to_thread(_verify, stored, password)
