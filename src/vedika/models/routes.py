"""`/routing`: the model list, the device's preference, and routing stats."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from vedika.errors import BadRequest
from vedika.identity.deps import CurrentSession, ServicesDep
from vedika.protocol import PreferenceRequest
from vedika.store.preferences import get_preference, set_preference

router = APIRouter(tags=["models"])


@router.get("/routing/models")
async def list_models(services: ServicesDep) -> dict[str, Any]:
    """Every model a client can pick; `best` is not listed, clients offer it as default."""
    models = [m.public() for m in services.models.catalogue.listed()]
    return {"models": models, "total_count": len(models)}


@router.get("/api/models", include_in_schema=False)
async def list_models_alias(services: ServicesDep) -> dict[str, Any]:
    return await list_models(services)


@router.get("/routing/stats")
async def routing_stats(
    services: ServicesDep,
    session: CurrentSession,
    device_id: str | None = Query(None, max_length=128),
) -> dict[str, Any]:
    pref = await get_preference(services.store, device_id=session.device_id)
    available = services.models.catalogue.available()
    return {
        "has_preference": bool(pref and pref.preference_type),
        "preference_type": pref.preference_type if pref else None,
        "preferred_model": pref.model_id if pref else None,
        "usage_count": pref.usage_count if pref else 0,
        "available_models": len(available),
        "total_models": len(services.models.catalogue.listed()),
    }


@router.post("/routing/preferences")
async def save_preference(
    services: ServicesDep, session: CurrentSession, body: PreferenceRequest
) -> dict[str, Any]:
    if body.model_id == "best":
        pref_type, model_id = "auto_select", "best"
    else:
        if services.models.catalogue.get(body.model_id) is None:
            raise BadRequest(f"There is no model called {body.model_id!r}.", code="unknown_model")
        pref_type, model_id = "user_override", body.model_id
    await set_preference(
        services.store, device_id=session.device_id, model_id=model_id, preference_type=pref_type
    )
    return {
        "success": True,
        "message": f"Saved: {model_id}.",
        "current_preference": {"model_id": model_id, "preference_type": pref_type},
    }


@router.delete("/routing/preferences")
async def clear_preference(services: ServicesDep, session: CurrentSession) -> dict[str, Any]:
    await set_preference(
        services.store, device_id=session.device_id, model_id="best", preference_type="auto_select"
    )
    return {
        "success": True,
        "message": "Back to automatic model selection.",
        "current_preference": {"model_id": "best", "preference_type": "auto_select"},
    }
