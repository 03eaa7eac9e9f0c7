"""`/auth/api-keys`: an account's API keys (issue 19; docs/api.md).

Created, listed and revoked by a signed-in session (a key cannot make or revoke keys:
a leaked key must not be able to mint others). The secret is in the creation's answer
only; the list shows each key's name, prefix, dates and last use.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from vedika.api.accounts import CsrfChecked, SignedIn
from vedika.api.deps import ServicesDep
from vedika.errors import BadRequest, Forbidden, NotFound
from vedika.identity import apikeys
from vedika.identity.sessions import DeviceSession
from vedika.protocol import Text, iso

router = APIRouter(tags=["accounts"])
_KEY_ID = re.compile(r"[0-9a-f-]{1,64}")


class CreateKeyRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: Text = Field(..., min_length=1, max_length=100)
    expires_in_days: int | None = Field(
        None, ge=1, le=3650, description="Days until the key expires; none: the server's maximum."
    )


async def by_session(session: SignedIn) -> DeviceSession:
    """A signed-in session that is not itself an API key."""
    if session.session_id.startswith("apikey:"):
        raise Forbidden(
            "API keys are managed from a signed-in session, not with a key.",
            code="api_key_not_allowed",
        )
    return session


KeyManager = Annotated[DeviceSession, Depends(by_session)]


def key_object(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"] if isinstance(row, dict) else row.id,
        "name": _get(row, "name"),
        "prefix": _get(row, "prefix"),
        "created_at": iso(_get(row, "created_at")),
        "expires_at": iso(_get(row, "expires_at")),
        "last_used_at": iso(_get(row, "last_used_at")),
    }


def _get(row: Any, name: str) -> Any:
    return row[name] if isinstance(row, dict) else getattr(row, name)


@router.post("/auth/api-keys", status_code=201)
async def create_api_key(
    services: ServicesDep, session: KeyManager, body: CreateKeyRequest, _csrf: CsrfChecked
) -> dict[str, Any]:
    """A new API key for your account. `key` is shown here once and never again."""
    name = " ".join(body.name.split())
    if not name:
        raise BadRequest("A key needs a name.", code="empty_name")
    settings = services.settings
    days = body.expires_in_days or settings.api_key_max_days
    if days > settings.api_key_max_days:
        raise BadRequest(
            f"A key may live at most {settings.api_key_max_days} days here.",
            code="expiry_too_long",
        )
    account_id = session.account_id or ""
    async with services.store.tx() as conn:
        if await apikeys.count_live(conn, account_id=account_id) >= settings.api_keys_per_account:
            raise BadRequest(
                f"An account may have at most {settings.api_keys_per_account} live keys. "
                "Revoke one first.",
                code="too_many_api_keys",
            )
        row, secret = await apikeys.create_key(
            conn, account_id=account_id, name=name, expires_in_days=days
        )
    return {**key_object(row), "key": secret}


@router.get("/auth/api-keys")
async def list_api_keys(services: ServicesDep, session: KeyManager) -> dict[str, Any]:
    """Your account's keys (not revoked), newest first: never their secrets."""
    async with services.store.read() as conn:
        rows = await apikeys.list_keys(conn, account_id=session.account_id or "")
    return {"api_keys": [key_object(r) for r in rows]}


@router.delete("/auth/api-keys/{key_id}")
async def revoke_api_key(
    services: ServicesDep, session: KeyManager, key_id: str, _csrf: CsrfChecked
) -> dict[str, Any]:
    """Revoke a key: it stops working at once (other instances within seconds)."""
    if not _KEY_ID.fullmatch(key_id) or not await apikeys.revoke_key(
        services.store, account_id=session.account_id or "", key_id=key_id
    ):
        raise NotFound("There is no API key with that id.", code="api_key_not_found")
    return {"id": key_id, "revoked": True}
