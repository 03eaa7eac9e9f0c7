"""`/auth/device-session`: create and validate anonymous device sessions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response

from vedika.credits import ledger
from vedika.errors import Unauthorized
from vedika.identity.deps import COOKIE, ServicesDep
from vedika.identity.sessions import DeviceSession, create_session, find_session
from vedika.protocol import DeviceSessionRequest, iso
from vedika.scale.ratelimit import enforce
from vedika.services import Services

router = APIRouter(tags=["identity"])

MAX_CONVERSATIONS = 1000


async def session_object(services: Services, session: DeviceSession) -> dict[str, Any]:
    bal = await ledger.balance(
        services.store, device_id=session.device_id, daily=services.settings.daily_credits
    )
    return {
        "session_id": session.session_id,
        "device_id": session.device_id,
        "expires_at": iso(session.expires_at),
        "plan": session.plan,
        "max_conversations": MAX_CONVERSATIONS,
        "daily_credits": bal.daily,
        "credits_remaining": bal.remaining,
        "daily_vedika_coins": bal.daily,
        "vedika_coins_remaining": bal.remaining,
        "vedika_coins": {"remaining": bal.remaining},
        "message": f"Welcome to Vedika: {bal.remaining} of {bal.daily} coins left today.",
    }


@router.post("/auth/device-session", status_code=201)
async def create_device_session(
    services: ServicesDep,
    request: Request,
    response: Response,
    body: DeviceSessionRequest | None = None,
) -> dict[str, Any]:
    """Start an anonymous session for this device (sets an HttpOnly cookie too)."""
    client = request.client.host if request.client else "unknown"
    await enforce(
        services.limiter,
        f"session:{client}",
        services.settings.rate_sessions_per_minute,
        60,
        "new sessions from your address",
    )
    body = body or DeviceSessionRequest(device_id=None, device_info=None)
    session = await create_session(
        services.store,
        ttl_days=services.settings.session_ttl_days,
        device_id=body.device_id,
        device_info=body.device_info.model_dump(exclude_none=True) if body.device_info else None,
    )
    response.set_cookie(
        COOKIE,
        session.session_id,
        max_age=services.settings.session_ttl_days * 86400,
        httponly=True,
        samesite="lax",
        secure=services.settings.env != "development",
        path="/",
    )
    return await session_object(services, session)


@router.get("/auth/device-session/validate")
async def validate_device_session(
    services: ServicesDep, session_id: str = Query(..., max_length=128)
) -> dict[str, Any]:
    """The session object, or 401 when the id is unknown or expired."""
    session = await find_session(services.store, session_id=session_id)
    if session is None:
        raise Unauthorized(
            "This session is unknown or has expired. Create a new one.", code="session_expired"
        )
    return await session_object(services, session)
