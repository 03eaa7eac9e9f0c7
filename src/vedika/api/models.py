"""`/routing`: the model list, the device's preference, and routing stats.

The original web client calls `/routing/stats` and `/routing/preferences` with its
device id only (`?device_id=`, no session). A model preference is low-value data (which
model is picked by default; nothing of a conversation, a file or the coins), so a
device id alone may read and set the preference stored under that id; with a session,
the session's device is used and a `device_id` sent along must name it. Writes by id
alone are rate-limited per address like new sessions (docs/security.md).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Query, Request, Response

from vedika.api.deps import OptionalSession, ServicesDep
from vedika.api.fastlane import HotCall, hot
from vedika.errors import BadRequest, Unauthorized
from vedika.identity.sessions import DeviceSession
from vedika.ids import is_account_owner
from vedika.protocol import PreferenceRequest
from vedika.scale.ratelimit import enforce_per_address
from vedika.services import Services
from vedika.store.preferences import get_preference, set_preference

router = APIRouter(tags=["models"])

# A session is optional on these: `{}` tells OpenAPI clients so (a device id may do).
_SESSION_OPTIONAL: dict[str, Any] = {"security": [{}]}  # added to the bearer scheme

DeviceQuery = Query(
    None,
    min_length=8,
    max_length=128,
    pattern=r"^[A-Za-z0-9_.:-]+$",
    description="Without a session: the device whose preference this is.",
)


# The listing as sent, with what it was built from: it changes only when a model comes
# or goes, or its availability does (discovery), and every page load asks for it.
_listing: tuple[tuple[tuple[int, bool], ...], bytes] = ((), b"")


def _models_body(services: Services) -> bytes:
    global _listing
    models = services.models.catalogue.listed()
    key = tuple((id(m), m.available) for m in models)
    if _listing[0] != key:
        public = [m.public() for m in models]
        _listing = (key, orjson.dumps({"models": public, "total_count": len(public)}))
    return _listing[1]


@router.get("/routing/models", response_model=None)
async def list_models(services: ServicesDep) -> Response:
    """Every model a client can pick; `best` is not listed, clients offer it as default."""
    return Response(_models_body(services), media_type="application/json")


@router.get("/api/models", include_in_schema=False)
async def list_models_alias(services: ServicesDep) -> Response:
    return await list_models(services)


@hot("/routing/models")
@hot("/api/models")
async def hot_models(call: HotCall) -> tuple[int, bytes]:
    return 200, _models_body(call.services)


async def _owner(
    services: Services,
    request: Request,
    session: DeviceSession | None,
    device_id: str | None,
    *,
    writing: bool,
) -> str:
    """Whose preference: the session's device, or the device id given alone."""
    if session is not None:
        return session.owner
    if not device_id or is_account_owner(device_id):  # an account's needs its session
        raise Unauthorized(
            "Send a device session ('Authorization: Bearer <session_id>') or a device_id.",
            code="session_required",
        )
    if writing:
        await enforce_per_address(
            services.limiter,
            request,
            "pref",
            services.settings.rate_sessions_per_minute,
            "preference changes from your address",
        )
    return device_id


@router.get("/routing/stats", openapi_extra=_SESSION_OPTIONAL)
async def routing_stats(
    services: ServicesDep,
    request: Request,
    session: OptionalSession,
    device_id: str | None = DeviceQuery,
) -> dict[str, Any]:
    owner = await _owner(services, request, session, device_id, writing=False)
    pref = await get_preference(services.store, device_id=owner)
    catalogue = services.models.catalogue
    return {
        "has_preference": bool(pref and pref.preference_type),
        "preference_type": pref.preference_type if pref else None,
        "preferred_model": pref.model_id if pref else None,
        "usage_count": pref.usage_count if pref else 0,
        # a list of model objects, as the original client's types say (not a count)
        "available_models": [m.public() for m in catalogue.available()],
        "total_models": len(catalogue.listed()),
    }


@router.post("/routing/preferences", openapi_extra=_SESSION_OPTIONAL)
async def save_preference(
    services: ServicesDep,
    request: Request,
    session: OptionalSession,
    body: PreferenceRequest,
    device_id: str | None = DeviceQuery,
) -> dict[str, Any]:
    if body.model_id == "best":
        pref_type, model_id = "auto_select", "best"
    else:
        if services.models.catalogue.get(body.model_id) is None:
            raise BadRequest(f"There is no model called {body.model_id!r}.", code="unknown_model")
        pref_type, model_id = "user_override", body.model_id
    owner = await _owner(services, request, session, device_id, writing=True)
    return await _store(services, owner, model_id, pref_type, f"Saved: {model_id}.")


@router.delete("/routing/preferences", openapi_extra=_SESSION_OPTIONAL)
async def clear_preference(
    services: ServicesDep,
    request: Request,
    session: OptionalSession,
    device_id: str | None = DeviceQuery,
) -> dict[str, Any]:
    owner = await _owner(services, request, session, device_id, writing=True)
    return await _store(
        services, owner, "best", "auto_select", "Back to automatic model selection."
    )


async def _store(
    services: Services, owner: str, model_id: str, pref_type: str, message: str
) -> dict[str, Any]:
    """Save the preference; the answer both preference calls give."""
    await set_preference(
        services.store, device_id=owner, model_id=model_id, preference_type=pref_type
    )
    return {
        "success": True,
        "message": message,
        "current_preference": {"model_id": model_id, "preference_type": pref_type},
    }
