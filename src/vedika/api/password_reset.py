"""`POST /auth/password/forgot` and `POST /auth/password/reset`: a password reset by
email (docs/accounts.md "Email").

`forgot` answers 202 with one body whatever the email (known, unknown, disabled), and
mails only to a known account, in the background: the answer does not tell whether an
account exists, and never waits for the mail server (a known email costs one small
write more: its token). Attempts are counted per email, known or not
(`VEDIKA_RATE_PASSWORD_RESETS_PER_HOUR`), and per client address. `reset` takes the
token from the mail (single use, `VEDIKA_PASSWORD_RESET_MINUTES`), sets the password,
and ends every other session of the account. Without SMTP both answer 503
`password_reset_unavailable`.
"""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from vedika.api.accounts import CsrfChecked, public_base
from vedika.api.deps import ServicesDep
from vedika.api.sessions import live_session
from vedika.errors import BadRequest, ServiceUnavailable
from vedika.identity import accounts, passwords, resets
from vedika.identity.sessions import account_sessions, delete_sessions, forget
from vedika.mail import Mailer, mailer, send_later
from vedika.protocol import Text
from vedika.scale.ratelimit import enforce, enforce_per_address
from vedika.services import Services

router = APIRouter(tags=["accounts"])

SENT = (
    "If an account has this email, a link to choose a new password is on its way. "
    "It works once, for {minutes} minutes."
)


class ForgotRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    email: Text = Field(..., max_length=accounts.MAX_EMAIL + 20)


class ResetRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    token: Text = Field(..., max_length=resets.MAX_TOKEN)
    password: Text = Field(..., max_length=passwords.MAX_LENGTH)


def _mailer_or_503(services: Services) -> Mailer:
    mail = mailer(services.settings)
    if mail is None:
        raise ServiceUnavailable(
            "Password reset by email is not available on this server: it has no mail "
            "server configured. Ask its operator.",
            code="password_reset_unavailable",
            retryable=False,
        )
    return mail


async def _limit_address(services: Services, request: Request) -> None:
    await enforce_per_address(
        services.limiter,
        request,
        "password-reset",
        services.settings.rate_logins_per_minute,
        "password reset attempts from your address",
    )


@router.post("/auth/password/forgot", status_code=202)
async def forgot_password(
    services: ServicesDep, request: Request, body: ForgotRequest, _csrf: CsrfChecked
) -> dict[str, Any]:
    """Mail a password reset link to this email if an account has it. The same answer
    whatever the email."""
    mail = _mailer_or_503(services)
    settings = services.settings
    email = accounts.normalise_email(body.email)
    await _limit_address(services, request)
    key = hashlib.sha256(email.encode()).hexdigest()[:32]  # no email in Redis keys
    await enforce(
        services.limiter,
        f"password-reset:{key}",
        settings.rate_password_resets_per_hour,
        3600,
        "password reset mails for this email",
    )
    async with services.store.tx() as conn:
        account = await accounts.find_by_email(conn, email=email)
        token = (
            await resets.create(
                conn, account_id=account.id, minutes=settings.password_reset_minutes
            )
            if account is not None
            else None
        )
    if account is not None and token is not None:
        link = f"{public_base(services, request)}/reset-password?token={token}"
        send_later(
            mail,
            to=account.email,
            subject="Choose a new Vedika password",
            text=(
                "Someone (hopefully you) asked to reset the password of the Vedika "
                f"account {account.email}.\n\nChoose a new password here (the link works "
                f"once, for {settings.password_reset_minutes} minutes):\n{link}\n\n"
                "If you did not ask, ignore this mail: your password stays as it is.\n"
            ),
            kind="password_reset",
        )
    return {"accepted": True, "message": SENT.format(minutes=settings.password_reset_minutes)}


@router.post("/auth/password/reset")
async def reset_password(
    services: ServicesDep, request: Request, body: ResetRequest, _csrf: CsrfChecked
) -> dict[str, Any]:
    """Set a new password with the token from the mail (once). Every session of the
    account ends, except the caller's own if it is signed in to it."""
    _mailer_or_503(services)
    await _limit_address(services, request)
    passwords.check_rules(body.password)
    password_hash = await passwords.hash_password(body.password)
    live = await live_session(services, request)
    async with services.store.tx() as conn:
        account_id = await resets.consume(conn, token=body.token)
        if account_id is None:
            raise BadRequest(
                "This reset link is unknown, used or expired. Ask for a new one.",
                code="invalid_reset_token",
            )
        await resets.set_password(conn, account_id=account_id, password_hash=password_hash)
        keep = live.session_id if live is not None and live.account_id == account_id else None
        ended = [
            r.session_id
            for r in await account_sessions(conn, account_id=account_id)
            if r.session_id != keep
        ]
        await delete_sessions(conn, session_ids=ended)
    forget(services.store, ended)
    return {"reset": True, "sessions_ended": len(ended)}
