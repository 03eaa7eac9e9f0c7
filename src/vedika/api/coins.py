"""`/coins`: the device's balance and ledger."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from vedika.api.deps import CurrentSession, ServicesDep
from vedika.api.fastlane import SESSION_PARAMS, HotCall, hot
from vedika.api.responses import JSONResponse, dumps
from vedika.credits import ledger
from vedika.credits.plans import daily_allowance
from vedika.identity.sessions import DeviceSession
from vedika.protocol import iso
from vedika.services import Services

router = APIRouter(tags=["coins"])


async def balance_of(services: Services, session: DeviceSession) -> ledger.Balance:
    """The session owner's balance today, at its plan's allowance."""
    return await ledger.balance(
        services.store,
        device_id=session.owner,
        daily=daily_allowance(services.settings, session.owner),
    )


async def balance_body(services: Services, session: DeviceSession) -> dict[str, Any]:
    bal = await balance_of(services, session)
    return {
        "balance": bal.remaining,
        "available": bal.remaining,
        "locked": 0,
        "expiring_soon": bal.daily_remaining,  # today's; granted coins stay
        "granted_remaining": bal.granted,
        "total_earned": bal.daily,
        "total_spent": bal.used,
        "plan": session.plan,
        "daily_credits": bal.daily,
        "credits_used": bal.used,
        "credits_remaining": bal.remaining,
        "daily_vedika_coins": bal.daily,
        "vedika_coins_remaining": bal.remaining,
        "expires_at": iso(ledger.resets_at()),
    }


@router.get("/coins/balance", response_model=None)
async def coin_balance(services: ServicesDep, session: CurrentSession) -> JSONResponse:
    return JSONResponse(await balance_body(services, session))


@hot("/coins/balance", params=SESSION_PARAMS)
async def hot_balance(call: HotCall) -> tuple[int, bytes]:
    return 200, dumps(await balance_body(call.services, await call.session()))


@router.get("/coins/transactions")
async def coin_transactions(
    services: ServicesDep, session: CurrentSession, limit: int = Query(100, ge=1, le=500)
) -> dict[str, Any]:
    rows = await ledger.transactions(services.store, device_id=session.owner, limit=limit)
    return {"transactions": rows, "total": len(rows)}
