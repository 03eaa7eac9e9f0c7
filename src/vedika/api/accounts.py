"""`/auth/register`, `/auth/login`, `/auth/logout`, `/auth/me`: email + password
accounts on top of device sessions (docs/accounts.md).

Signing in makes a new session for the caller's device, bound to the account, and in
the same transaction gives the device's anonymous conversations and files to the
account (claiming; vedika.store.owners.move). Signing out deletes that session and
starts a new, empty anonymous device for the browser.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from vedika.api.csrf import csrf_guard
from vedika.api.deps import CurrentSession, ServicesDep, account_disabled
from vedika.api.sessions import live_session, session_object, set_cookies
from vedika.credits import plans
from vedika.errors import Unauthorized
from vedika.identity import accounts, devices, passwords, roles
from vedika.identity.accounts import Account
from vedika.identity.sessions import DeviceSession, delete_sessions, forget, insert_session
from vedika.ids import account_owner
from vedika.mail import mailer, send_later
from vedika.protocol import Text, iso, utcnow
from vedika.scale.ratelimit import enforce, enforce_per_address
from vedika.services import Services
from vedika.store import owners

router = APIRouter(tags=["accounts"])

# Last among a route's parameters, so a call with no session is told so (401) first.
CsrfChecked = Annotated[None, Depends(csrf_guard)]
# Wrong passwords and unknown emails get this one answer (no enumeration by sign-in).
WRONG = "That email and password do not match an account."


class RegisterRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    email: Text = Field(..., max_length=accounts.MAX_EMAIL + 20)
    password: Text = Field(..., max_length=passwords.MAX_LENGTH)
    name: Text | None = Field(None, max_length=100)


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    email: Text = Field(..., max_length=accounts.MAX_EMAIL + 20)
    password: Text = Field(..., max_length=passwords.MAX_LENGTH)


def account_object(account: Account) -> dict[str, Any]:
    return {
        "account_id": account.id,
        "email": account.email,
        "name": account.name,
        "plan": account.plan,
        "created_at": iso(account.created_at),
    }


async def signed_in(session: CurrentSession) -> DeviceSession:
    """The caller's session, which must be signed in to an account."""
    if session.account_id is None:
        raise Unauthorized("Sign in first: this session is anonymous.", code="not_signed_in")
    return session


SignedIn = Annotated[DeviceSession, Depends(signed_in)]


async def limit_sign_in(services: Services, request: Request, email: str) -> None:
    """Brute force is slowed per address and per account (any attempt counts)."""
    settings = services.settings
    await enforce_per_address(
        services.limiter,
        request,
        "login",
        settings.rate_logins_per_minute,
        "sign-in attempts from your address",
    )
    key = hashlib.sha256(email.encode()).hexdigest()[:32]  # no email in Redis keys
    await enforce(
        services.limiter,
        f"login-account:{key}",
        settings.rate_logins_per_account_hour,
        3600,
        "sign-in attempts for this account",
    )


@dataclass(frozen=True, slots=True)
class SignedInNow:
    session: DeviceSession
    binding: devices.Binding
    claimed: int  # conversations moved from the device to the account
    ended: str | None  # the id of the signed-in session this one replaces


async def _sign_in(
    conn: AsyncConnection, services: Services, request: Request, account: Account
) -> SignedInNow:
    """Inside the caller's transaction: the caller's device (its live session's, its
    device cookie's, or a new one), a new session of it bound to the account, and the
    device's anonymous conversations and files moved to the account. A signed-in session
    sent along ends: the new one replaces it (switching accounts signs the first out)."""
    live = await live_session(services, request)
    binding = await devices.bind(
        conn,
        devices.Proof(
            asked=live.device_id if live else None,
            cookie=request.cookies.get(devices.DEVICE_COOKIE),
            live_device=live.device_id if live else None,
        ),
        trust_ids=services.settings.trust_device_ids,
    )
    claimed = await owners.move(conn, source=binding.device_id, target=account_owner(account.id))
    session = await insert_session(
        conn,
        ttl_days=services.settings.session_ttl_days,
        device_id=binding.device_id,
        client_device_id=live.client_device_id if live else binding.client_device_id,
        account_id=account.id,
        plan=plans.ACCOUNT,
    )
    ended = live.session_id if live and live.account_id else None
    if ended:
        await delete_sessions(conn, session_ids=[ended])
    return SignedInNow(session, binding, claimed, ended)


async def _signed_in_body(
    services: Services, response: Response, now: SignedInNow, account: Account
) -> dict[str, Any]:
    if now.ended:
        forget(services.store, [now.ended])
    set_cookies(response, services.settings, now.session, now.binding)
    body = await session_object(services, now.session)
    if now.binding.issued:
        body["device_secret"] = now.binding.secret
    return {**body, "account": account_object(account), "claimed_conversations": now.claimed}


@router.post("/auth/register", status_code=201)
async def register(
    services: ServicesDep,
    request: Request,
    response: Response,
    body: RegisterRequest,
    _csrf: CsrfChecked,
) -> dict[str, Any]:
    """Create an account and sign in with it; this device's anonymous conversations and
    files become the account's. The session object, with `account`."""
    email = accounts.normalise_email(body.email)
    passwords.check_rules(body.password)
    await limit_sign_in(services, request, email)
    password_hash = await passwords.hash_password(body.password)
    name = (body.name or "").strip() or None
    try:
        async with services.store.tx() as conn:
            account = await accounts.create_account(
                conn, email=email, name=name, password_hash=password_hash, plan=plans.ACCOUNT
            )
            await roles.claim_first(conn, account_id=account.id)  # the first is an admin
            now = await _sign_in(conn, services, request, account)
    except IntegrityError:  # the same email registered concurrently
        raise accounts.email_taken() from None
    return await _signed_in_body(services, response, now, account)


@router.post("/auth/login")
async def login(
    services: ServicesDep,
    request: Request,
    response: Response,
    body: LoginRequest,
    _csrf: CsrfChecked,
) -> dict[str, Any]:
    """Sign in; this device's anonymous conversations and files become the account's.
    A wrong password and an unknown email get the same 401, in about the same time."""
    email = accounts.normalise_email(body.email)
    await limit_sign_in(services, request, email)
    async with services.store.read() as conn:
        account = await accounts.find_by_email(conn, email=email)
    stored = account.password_hash if account else None
    if not await passwords.verify_password(stored, body.password) or account is None:
        raise Unauthorized(WRONG, code="invalid_credentials")
    if account.disabled_at is not None:  # said only to who knows the password
        raise account_disabled()
    async with services.store.tx() as conn:
        now = await _sign_in(conn, services, request, account)
    signed_in_notice(services, request, account)
    return await _signed_in_body(services, response, now, account)


def signed_in_notice(services: Services, request: Request, account: Account) -> None:
    """A mail to the account's address about this sign-in, in the background (never
    failing or slowing the sign-in); nothing without SMTP."""
    mail = mailer(services.settings)
    if mail is None:
        return
    where = request.client.host if request.client else "an unknown address"
    agent = request.headers.get("user-agent", "an unknown browser")[:200]
    reset = f"{public_base(services, request)}/reset-password"
    send_later(
        mail,
        to=account.email,
        subject="New sign-in to your Vedika account",
        text=(
            f"Someone signed in to your Vedika account ({account.email}) at "
            f"{iso(utcnow())} from {where}, using {agent}.\n\n"
            "If that was you, there is nothing to do. If not, change your password "
            f"now: {reset}\n"
        ),
        kind="sign_in_notice",
    )


def public_base(services: Services, request: Request) -> str:
    """Where this server's pages are, for links in mail: VEDIKA_PUBLIC_URL, else the
    address this request came to."""
    return services.settings.public_url or str(request.base_url).rstrip("/")


@router.post("/auth/logout")
async def logout(
    services: ServicesDep, session: SignedIn, response: Response, _csrf: CsrfChecked
) -> dict[str, Any]:
    """Sign out: this session ends, and the browser gets a new, empty anonymous device
    (the session object, with its `device_secret`)."""
    settings = services.settings
    async with services.store.tx() as conn:
        await delete_sessions(conn, session_ids=[session.session_id])
        binding = await devices.bind(conn, devices.Proof())
        fresh = await insert_session(
            conn, ttl_days=settings.session_ttl_days, device_id=binding.device_id
        )
    forget(services.store, [session.session_id])
    set_cookies(response, settings, fresh, binding)
    body = await session_object(services, fresh)
    body["device_secret"] = binding.secret
    return body


@router.get("/auth/me")
async def me(services: ServicesDep, session: SignedIn) -> dict[str, Any]:
    """The signed-in account, its role (`admin` or `user`), and this session."""
    async with services.store.read() as conn:
        account = await accounts.find_by_id(conn, account_id=session.account_id or "")
        role = (
            await roles.role_of(
                conn,
                email=account.email,
                account_id=account.id,
                admin_emails=services.settings.admin_emails,
            )
            if account is not None
            else roles.USER
        )
    if account is None:
        raise Unauthorized("This account no longer exists.", code="not_signed_in")
    return {
        "account": account_object(account),
        "role": role,
        "session": await session_object(services, session),
    }
