"""`/auth/device-session`: create and validate anonymous device sessions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response

from vedika.api.coins import balance_of
from vedika.api.deps import COOKIE, ServicesDep, account_disabled, session_id_from
from vedika.api.fastlane import HotCall, hot
from vedika.api.responses import JSONResponse, dumps
from vedika.errors import Unauthorized
from vedika.identity import devices
from vedika.identity.sessions import DeviceSession, find_session, insert_session
from vedika.protocol import DeviceSessionRequest, iso
from vedika.scale.ratelimit import enforce_per_address
from vedika.services import Services
from vedika.settings import Settings

router = APIRouter(tags=["identity"])

MAX_CONVERSATIONS = 1000
DEVICE_COOKIE_DAYS = 365


async def session_object(services: Services, session: DeviceSession) -> dict[str, Any]:
    bal = await balance_of(services, session)
    return {
        "session_id": session.session_id,
        "device_id": session.device_id,
        "account_id": session.account_id,
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
    await enforce_per_address(
        services.limiter,
        request,
        "session",
        services.settings.rate_sessions_per_minute,
        "new sessions from your address",
    )
    body = body or DeviceSessionRequest(device_id=None, device_secret=None, device_info=None)
    settings = services.settings
    live = await live_session(services, request)
    async with services.store.tx() as conn:
        binding = await devices.bind(
            conn,
            devices.Proof(
                asked=body.device_id,
                secret=body.device_secret,
                cookie=request.cookies.get(devices.DEVICE_COOKIE),
                live_device=live.device_id if live else None,
            ),
            trust_ids=settings.trust_device_ids,
        )
        session = await insert_session(
            conn,
            ttl_days=settings.session_ttl_days,
            device_id=binding.device_id,
            client_device_id=binding.client_device_id,
            device_info=body.device_info.model_dump(exclude_none=True)
            if body.device_info
            else None,
        )
    set_cookies(response, settings, session, binding)
    body_out = await session_object(services, session)
    if binding.issued:
        body_out["device_secret"] = binding.secret  # shown once; keep it to come back
    return body_out


def set_cookies(
    response: Response, settings: Settings, session: DeviceSession, binding: devices.Binding
) -> None:
    """The session cookie, and the device cookie when the device's secret is known."""
    max_age = settings.session_ttl_days * 86400
    secure = settings.env != "development"
    response.set_cookie(
        COOKIE, session.session_id, max_age=max_age, httponly=True, samesite="lax", secure=secure
    )
    if binding.secret is not None:
        # The device outlives its sessions: a year, renewed with every session.
        response.set_cookie(
            devices.DEVICE_COOKIE,
            devices.cookie_value(binding.device_id, binding.secret),
            max_age=DEVICE_COOKIE_DAYS * 86400,
            httponly=True,
            samesite="lax",
            secure=secure,
        )


async def live_session(services: Services, request: Request) -> DeviceSession | None:
    """A live session sent along (bearer or cookie): proof of holding its device."""
    sid = session_id_from(request.headers.get("authorization"), request.cookies.get(COOKIE), None)
    return await find_session(services.store, session_id=sid) if sid else None


@router.get("/auth/device-session/validate", response_model=None)
async def validate_device_session(
    services: ServicesDep,
    request: Request,
    session_id: str | None = Query(None, max_length=128),
) -> JSONResponse:
    """The session object, or 401 when the id is unknown or expired. The id may come as
    `?session_id=` (the original web client), or, better kept out of URLs and logs, as
    `Authorization: Bearer` or the session cookie."""
    sid = session_id or session_id_from(
        request.headers.get("authorization"), request.cookies.get(COOKIE), None
    )
    return JSONResponse(await _validated(services, sid))  # no second encoding pass


async def _validated(services: Services, sid: str | None) -> dict[str, Any]:
    session = await find_session(services.store, session_id=sid) if sid else None
    if session is None:
        raise Unauthorized(
            "This session is unknown or has expired. Create a new one.", code="session_expired"
        )
    if session.disabled:
        raise account_disabled()
    return await session_object(services, session)


@hot("/auth/device-session/validate", params=frozenset({"session_id"}))
async def hot_validate(call: HotCall) -> tuple[int, bytes]:
    """The query's `session_id` first, as the route reads it."""
    sid = call.query.get("session_id") or call.session_id()
    return 200, dumps(await _validated(call.services, sid))
