"""FastAPI dependencies: the services, and the caller's device session.

The session is taken from (first match wins) `Authorization: Bearer <id>`, the
HttpOnly cookie, or a `session_id` in the query or JSON body (existing clients
send it that way). A `device_id` sent along must match the session's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

import orjson
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from vedika.errors import Forbidden, Unauthorized
from vedika.identity import apikeys
from vedika.identity.sessions import DeviceSession, find_session
from vedika.services import Services
from vedika.store.engine import Store

COOKIE = "vedika_session"


async def get_services(request: Request) -> Services:
    """Async on purpose: FastAPI runs a plain `def` dependency in its thread pool, a
    thread hop on every request."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def session_id_from(headers_auth: str | None, cookie: str | None, query: str | None) -> str | None:
    if headers_auth and headers_auth[:7].lower() == "bearer ":
        token = headers_auth[7:].strip()
        if token:
            return token
    return cookie or query or None


async def _body_fields(request: Request) -> dict[str, object]:
    if request.method not in ("POST", "PATCH", "PUT", "DELETE"):
        return {}
    if "json" not in request.headers.get("content-type", ""):
        return {}
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return {}
    return body if isinstance(body, dict) else {}


# Declared so the OpenAPI schema says which calls need a session (the header is read
# below together with the cookie and the query/body fallbacks).
_bearer = HTTPBearer(auto_error=False, description="The session_id from /auth/device-session.")


async def current_session(
    request: Request,
    services: ServicesDep,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None,
) -> DeviceSession:
    sid = session_id_from(
        request.headers.get("authorization"),
        request.cookies.get(COOKIE),
        request.query_params.get("session_id"),
    )
    body: dict[str, object] = {}
    if sid is None:
        body = await _body_fields(request)
        value = body.get("session_id")
        sid = value if isinstance(value, str) else None
    device_id = request.query_params.get("device_id") or request.headers.get("x-device-id")
    if device_id is None:
        body = body or await _body_fields(request)
        value = body.get("device_id")
        device_id = value if isinstance(value, str) else None
    return await resolve_session(services.store, sid, device_id)


# The kinds of bearer credential besides a device session, keyed by their prefix: each
# gives the session the credential stands for, or raises Unauthorized with its own code.
# A device session id never starts with one of these (it has no `_` at index 2: see
# `credential_kind`).
Resolver = Callable[[Store, str], Awaitable[DeviceSession]]
CREDENTIAL_KINDS: dict[str, Resolver] = {apikeys.PREFIX: apikeys.session_for}


def credential_kind(token: str) -> Resolver | None:
    """The resolver for `token`'s kind, or None for a device session id."""
    return CREDENTIAL_KINDS.get(token[:3])


async def check_credential(store: Store, token: str) -> bool:
    """Whether `token` names a live session or credential (the socket's handshake)."""
    kind = credential_kind(token)
    if kind is None:
        return await find_session(store, session_id=token) is not None
    try:
        await kind(store, token)
    except Unauthorized:
        return False
    return True


async def resolve_session(
    store: Store, sid: str | None, device_id: str | None, *, missing: str = "session_required"
) -> DeviceSession:
    """The live session `sid`, checked against the `device_id` sent along (if any): the
    one check REST, SSE and the socket share. `missing` is the code when no session was
    sent (the socket's is `unauthorized`, as existing clients expect)."""
    if not sid:
        raise Unauthorized(
            "No device session. Create one with POST /auth/device-session and send it as "
            "'Authorization: Bearer <session_id>'.",
            code=missing,
        )
    kind = credential_kind(sid)
    if kind is not None:
        session = await kind(store, sid)
    else:
        found = await find_session(store, session_id=sid)
        if found is None:
            raise Unauthorized(
                "Your session is unknown or has expired. Create a new one.", code="session_expired"
            )
        session = found
    if device_id and not session.names(device_id):
        raise Forbidden("This session belongs to another device.", code="device_mismatch")
    if session.disabled:
        raise account_disabled()
    return session


def account_disabled() -> Forbidden:
    """A disabled account's sessions and sign-ins get this everywhere (docs/accounts.md)."""
    return Forbidden(
        "This account is disabled. Ask the operator of this server, or continue without "
        "signing in.",
        code="account_disabled",
    )


CurrentSession = Annotated[DeviceSession, Depends(current_session)]


async def optional_session(
    request: Request,
    services: ServicesDep,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None,
) -> DeviceSession | None:
    """The caller's session when it sent one (checked as `current_session` does), else
    None: for the few calls a device id alone may make (docs/security.md)."""
    sent = session_id_from(
        request.headers.get("authorization"),
        request.cookies.get(COOKIE),
        request.query_params.get("session_id"),
    )
    if sent is None and not isinstance((await _body_fields(request)).get("session_id"), str):
        return None
    return await current_session(request, services, _credentials)


OptionalSession = Annotated[DeviceSession | None, Depends(optional_session)]
