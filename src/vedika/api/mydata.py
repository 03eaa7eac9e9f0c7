"""Your data, signed in: your sessions (list, revoke one, sign out everywhere), an
export of everything your account has, and closing the account (docs/accounts.md).

A session is named here by its handle (a prefix of its id's SHA-256), never by its id:
the id is a credential, and the list shows every device's.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from vedika.api.accounts import WRONG, CsrfChecked, SignedIn, account_object, limit_sign_in
from vedika.api.deps import COOKIE, ServicesDep
from vedika.api.responses import JSONResponse
from vedika.errors import BadRequest, NotFound, Unauthorized
from vedika.identity import accounts, apikeys, devices, passwords, resets, roles
from vedika.identity.oidc import identities
from vedika.identity.sessions import (
    account_sessions,
    delete_sessions,
    forget,
    public_handle,
)
from vedika.ids import account_owner
from vedika.protocol import Text, iso, utcnow
from vedika.services import Services
from vedika.store import owners

router = APIRouter(tags=["accounts"])


class DeleteAccountRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    # The account's password; an account made by single sign-on has none, and confirms
    # with its email instead (the signed-in session is the proof of who asks).
    password: Text | None = Field(None, max_length=passwords.MAX_LENGTH)
    email: Text | None = Field(None, max_length=accounts.MAX_EMAIL)


def _same_email(given: str | None, email: str) -> bool:
    try:
        return given is not None and accounts.normalise_email(given) == email
    except BadRequest:
        return False


def _session_row(row: Any, current: str) -> dict[str, Any]:
    return {
        "id": public_handle(row.session_id),
        "current": row.session_id == current,
        "device_id": row.device_id,
        "device_info": row.device_info,
        "created_at": iso(row.created_at),
        "expires_at": iso(row.expires_at),
    }


@router.get("/auth/sessions")
async def list_sessions(services: ServicesDep, session: SignedIn) -> dict[str, Any]:
    """Every live session signed in to your account, newest first (`current`: this one)."""
    async with services.store.read() as conn:
        rows = await account_sessions(conn, account_id=session.account_id or "")
    listed = [_session_row(r, session.session_id) for r in rows]
    return {"sessions": listed, "total": len(listed)}


async def _revoke(services: Services, account_id: str, handle: str | None) -> list[str]:
    """Delete the account's sessions (all, or the one with `handle`); their ids."""
    async with services.store.tx() as conn:
        rows = await account_sessions(conn, account_id=account_id)
        ids = [
            r.session_id for r in rows if handle is None or public_handle(r.session_id) == handle
        ]
        await delete_sessions(conn, session_ids=ids)
    forget(services.store, ids)
    return ids


def _signed_out(response: Response) -> None:
    response.delete_cookie(COOKIE)


@router.delete("/auth/sessions/{session_handle}")
async def revoke_session(
    services: ServicesDep,
    session: SignedIn,
    session_handle: str,
    response: Response,
    _csrf: CsrfChecked,
) -> dict[str, Any]:
    """Sign one of your sessions out (its `id` from the list; this one too)."""
    ids = await _revoke(services, session.account_id or "", session_handle)
    if not ids:
        raise NotFound("You have no session with that id.", code="session_not_found")
    if session.session_id in ids:
        _signed_out(response)
    return {"revoked": len(ids), "current": session.session_id in ids}


@router.delete("/auth/sessions")
async def revoke_all_sessions(
    services: ServicesDep, session: SignedIn, response: Response, _csrf: CsrfChecked
) -> dict[str, Any]:
    """Sign out everywhere: every session of your account ends, this one included."""
    ids = await _revoke(services, session.account_id or "", None)
    _signed_out(response)
    return {"revoked": len(ids)}


@router.get("/auth/export", response_model=None)
async def export_data(services: ServicesDep, session: SignedIn) -> JSONResponse:
    """Everything your account has, as one JSON document: the account, its sessions,
    conversations with every message, files with their text, coin transactions and
    preferences."""
    account_id = session.account_id or ""
    async with services.store.read() as conn:
        account = await accounts.find_by_id(conn, account_id=account_id)
        if account is None:
            raise Unauthorized("This account no longer exists.", code="not_signed_in")
        rows = await account_sessions(conn, account_id=account_id)
        owned = await owners.export(conn, owner=account_owner(account_id))
        connected = await identities.of_account(conn, account_id=account_id)
    body = {
        "exported_at": iso(utcnow()),
        "account": account_object(account),
        "sessions": [_session_row(r, session.session_id) for r in rows],
        "identities": connected,  # single sign-on: [{provider, email, connected_at}]
        **owned,
    }
    return JSONResponse(
        body, headers={"Content-Disposition": 'attachment; filename="vedika-export.json"'}
    )


@router.delete("/auth/account")
async def delete_account(
    services: ServicesDep,
    session: SignedIn,
    request: Request,
    response: Response,
    body: DeleteAccountRequest,
    _csrf: CsrfChecked,
) -> dict[str, Any]:
    """Close your account: it, its sessions and everything it owns are deleted at once
    (its conversations, files, coins and preferences). Needs your password again, or
    for an account made by single sign-on (no password), its email."""
    account_id = session.account_id or ""
    async with services.store.read() as conn:
        account = await accounts.find_by_id(conn, account_id=account_id)
    if account is None:
        raise Unauthorized("This account no longer exists.", code="not_signed_in")
    await limit_sign_in(services, request, account.email)
    if account.password_hash:
        confirmed = body.password is not None and await passwords.verify_password(
            account.password_hash, body.password
        )
    else:
        confirmed = _same_email(body.email, account.email)
    if not confirmed:
        raise Unauthorized(WRONG, code="invalid_credentials")
    async with services.store.tx() as conn:
        rows = await account_sessions(conn, account_id=account_id)
        ids = [r.session_id for r in rows]
        await delete_sessions(conn, session_ids=ids)
        file_ids = await owners.delete_all(conn, owner=account_owner(account_id))
        await apikeys.delete_keys(conn, account_id=account_id)
        await accounts.delete_account(conn, account_id=account_id)
        await resets.delete_for(conn, account_id=account_id)
        await roles.forget_in_audit(conn, account_id=account_id)
    forget(services.store, ids)
    if services.sources is not None:
        for file_id in file_ids:  # the bytes, once the rows are gone
            with contextlib.suppress(OSError):
                path = services.sources.library.path_for(file_id)
                await asyncio.to_thread(path.unlink, True)
    _signed_out(response)
    response.delete_cookie(devices.DEVICE_COOKIE)
    return {"deleted": True, "files": len(file_ids)}
