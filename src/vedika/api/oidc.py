"""`/auth/oidc/...`: single sign-on with OpenID Connect (docs/accounts.md).

The authorization code flow with PKCE against the providers of VEDIKA_OIDC_PROVIDERS
(vedika.identity.oidc does the protocol). A sign-in ends exactly as a password sign-in
does (api.accounts._sign_in: a new session for the device, its anonymous conversations
and files claimed by the account), then goes back to the local path it was started
with. Browsers get every failure as a redirect to `/signin?error=<code>`, never a
crash page; a caller that accepts only JSON gets the error itself.

An identity (provider, subject) is connected to one account: by the first sign-in with
it, which creates an account, unless the email is taken (`account_exists`: nothing is
ever joined on an email alone), or by `POST /auth/oidc/{id}/connect` while signed in.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.exc import IntegrityError

from vedika.api.accounts import SignedIn, _sign_in, _signed_in_body
from vedika.api.csrf import csrf_guard
from vedika.api.deps import ServicesDep, account_disabled
from vedika.api.responses import JSONResponse
from vedika.api.sessions import live_session
from vedika.credits import plans
from vedika.errors import BadRequest, Conflict, Forbidden, Unauthorized, VedikaError, error_body
from vedika.identity import accounts, roles
from vedika.identity.oidc import flow as oidc_flow
from vedika.identity.oidc import identities
from vedika.identity.oidc.discovery import Providers
from vedika.protocol import utcnow
from vedika.scale.ratelimit import enforce_per_address
from vedika.services import Services
from vedika.settings import OidcProviderSetting

router = APIRouter(tags=["accounts"])

CsrfChecked = Annotated[None, Depends(csrf_guard)]
BROWSER_COOKIE = "vedika_oidc"  # a secret of the browser that started a flow
COOKIE_PATH = "/auth/oidc"
SIGNIN_PAGE = "/signin"

ProviderId = Annotated[str, Path(max_length=40, description="The provider's id.")]
NextPath = Annotated[
    str | None,
    Query(max_length=2000, description="A local path to return to (`/`, `/chat/...`)."),
]
_REDIRECT: dict[int | str, dict[str, Any]] = {
    302: {"description": "To the provider, or back to `next` (or `/signin?error=...`)."},
    502: {"description": "The provider cannot be reached (only for JSON-only callers)."},
}


def _providers(services: Services) -> Providers:
    assert services.oidc is not None  # built by build_services
    return services.oidc


def safe_next(raw: str | None) -> str:
    """A local path only (`/...`), never another site (`//host`, `/\\host`, `https:`)."""
    if not raw or not raw.startswith("/") or raw.startswith(("//", "/\\")):
        return "/"
    if any(ord(c) < 0x20 or c in "\\\x7f" for c in raw):
        return "/"
    return raw


def _redirect_uri(services: Services, request: Request, provider: OidcProviderSetting) -> str:
    base = services.settings.public_url or str(request.base_url).rstrip("/")
    return f"{base}/auth/oidc/{provider.id}/callback"


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def _failed(request: Request, exc: VedikaError) -> Response:
    """A browser goes to the sign-in page, which says what went wrong."""
    if _wants_json(request):
        return JSONResponse(error_body(exc), status_code=exc.status, headers=exc.headers)
    return RedirectResponse(f"{SIGNIN_PAGE}?error={exc.code}", status_code=302)


async def _begin(
    services: Services,
    request: Request,
    response: Response,
    provider: OidcProviderSetting,
    next_path: str,
    account_id: str | None,
) -> str:
    """A flow kept server-side and the authorization URL; sets the browser cookie."""
    await enforce_per_address(
        services.limiter,
        request,
        "login",
        services.settings.rate_logins_per_minute,
        "sign-in attempts from your address",
    )
    providers = _providers(services)
    meta = await providers.metadata(provider)
    begun = oidc_flow.begin(provider, meta, _redirect_uri(services, request, provider))
    browser = request.cookies.get(BROWSER_COOKIE) or ""
    if not (32 <= len(browser) <= 64):
        browser = secrets.token_urlsafe(32)
    ttl = services.settings.oidc_flow_seconds
    async with services.store.tx() as conn:
        await identities.save_flow(
            conn,
            state=begun.state,
            browser=browser,
            provider=provider.id,
            verifier=begun.verifier,
            nonce=begun.nonce,
            next_path=next_path,
            account_id=account_id,
            ttl_seconds=ttl,
        )
    response.set_cookie(
        BROWSER_COOKIE,
        browser,
        max_age=ttl,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",  # sent on the provider's top-level redirect back to us
        secure=services.settings.env != "development",
    )
    return begun.url


@router.get("/auth/oidc/providers")
async def list_providers(services: ServicesDep) -> list[dict[str, str]]:
    """The identity providers one may sign in with here: `[{id, name}]` (maybe empty)."""
    return _providers(services).listed()


@router.get(
    "/auth/oidc/{provider_id}/start",
    response_class=RedirectResponse,
    status_code=302,
    responses=_REDIRECT,
)
async def start(
    services: ServicesDep, request: Request, provider_id: ProviderId, next: NextPath = None
) -> Response:
    """Sign in with this provider: a redirect to it (PKCE S256, state, nonce). It comes
    back to `/auth/oidc/{id}/callback`, then to `next` (a local path)."""
    provider = _providers(services).get(provider_id)  # 404 for an unknown id
    response = RedirectResponse("/", status_code=302)
    try:
        url = await _begin(services, request, response, provider, safe_next(next), None)
    except VedikaError as exc:
        return _failed(request, exc)
    response.headers["location"] = url
    return response


@router.post("/auth/oidc/{provider_id}/connect", responses={502: _REDIRECT[502]})
async def connect(
    services: ServicesDep,
    request: Request,
    response: Response,
    session: SignedIn,
    provider_id: ProviderId,
    _csrf: CsrfChecked,
    next: NextPath = None,
) -> dict[str, Any]:
    """Connect an identity at this provider to the signed-in account: `{authorization_url}`
    to send the browser to; once it comes back the identity signs in to this account."""
    provider = _providers(services).get(provider_id)
    url = await _begin(services, request, response, provider, safe_next(next), session.account_id)
    return {"authorization_url": url}


@router.get(
    "/auth/oidc/{provider_id}/callback",
    response_class=RedirectResponse,
    status_code=302,
    responses=_REDIRECT,
)
async def callback(
    services: ServicesDep,
    request: Request,
    provider_id: ProviderId,
    code: Annotated[str | None, Query(max_length=4096)] = None,
    state: Annotated[str | None, Query(max_length=512)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
    iss: Annotated[str | None, Query(max_length=2000)] = None,
) -> Response:
    """Where the provider sends the browser back: signs in (or connects) and redirects
    to the path the flow began with; a failure redirects to `/signin?error=<code>`."""
    provider = _providers(services).get(provider_id)
    try:
        return await _callback(services, request, provider, code, state, error, iss)
    except VedikaError as exc:
        return _failed(request, exc)
    except IntegrityError:  # the same identity or email created by a concurrent sign-in
        return _failed(request, _account_exists(provider))


def _state_refused() -> BadRequest:
    return BadRequest(
        "This sign-in has expired or was not started in this browser. Please start again.",
        code="oidc_state_invalid",
    )


def _account_exists(provider: OidcProviderSetting) -> Conflict:
    return Conflict(
        f"An account with the email of your {provider.name} sign-in already exists. Sign "
        f"in with its password, then connect {provider.name} from the account menu.",
        code="account_exists",
    )


async def _callback(
    services: Services,
    request: Request,
    provider: OidcProviderSetting,
    code: str | None,
    state: str | None,
    error: str | None,
    iss: str | None,
) -> Response:
    if not state:
        raise _state_refused()
    async with services.store.tx() as conn:
        flow = await identities.take_flow(conn, state=state)
    browser = identities.digest(request.cookies.get(BROWSER_COOKIE) or "")
    if (
        flow is None
        or flow.provider != provider.id
        or flow.expires_at < utcnow()
        or not hmac.compare_digest(flow.browser_hash, browser)
    ):
        raise _state_refused()
    if error or not code:
        raise Unauthorized(
            f"{provider.name} did not sign you in ({(error or 'no code')[:60]}).",
            code="oidc_refused",
        )
    providers = _providers(services)
    meta = await providers.metadata(provider)
    if iss is not None and iss.rstrip("/") != provider.issuer:  # RFC 9207: a mix-up
        raise oidc_flow.token_refused("the answer came from another issuer")
    tokens = await oidc_flow.exchange(
        providers,
        provider,
        meta,
        code=code,
        verifier=flow.verifier,
        redirect_uri=_redirect_uri(services, request, provider),
    )
    who = await oidc_flow.check_id_token(
        providers, provider, meta, tokens["id_token"], nonce=flow.nonce
    )
    if flow.account_id is not None:
        return await _connect(services, request, provider, flow, who)
    return await _login(services, request, provider, flow, who)


async def _login(
    services: Services,
    request: Request,
    provider: OidcProviderSetting,
    flow: identities.Flow,
    who: oidc_flow.Identity,
) -> Response:
    """The identity's account, or a new one for a new identity (never an existing
    account found by its email), signed in on this device with claiming."""
    async with services.store.tx() as conn:
        account_id = await identities.account_of(conn, provider=provider.id, subject=who.subject)
        account = await accounts.find_by_id(conn, account_id=account_id) if account_id else None
        if account is None:
            if who.email is None:
                raise BadRequest(
                    f"{provider.name} did not share an email address, which an account "
                    "needs. Allow it, or sign up with your email and password.",
                    code="oidc_email_missing",
                )
            if who.email_verified is False:
                raise Forbidden(
                    f"{provider.name} says your email address is not verified yet.",
                    code="oidc_email_unverified",
                )
            email = accounts.normalise_email(who.email)
            if await accounts.find_by_email(conn, email=email) is not None:
                raise _account_exists(provider)
            account = await accounts.create_account(
                conn, email=email, name=who.name, password_hash="", plan=plans.ACCOUNT
            )
            await identities.link(
                conn,
                provider=provider.id,
                subject=who.subject,
                account_id=account.id,
                email=who.email,
            )
            await roles.claim_first(conn, account_id=account.id)  # as a registration does
        elif account.disabled_at is not None:  # as a password sign-in is refused
            raise account_disabled()
        now = await _sign_in(conn, services, request, account)
    response = RedirectResponse(flow.next_path, status_code=302)
    await _signed_in_body(services, response, now, account)
    return response


async def _connect(
    services: Services,
    request: Request,
    provider: OidcProviderSetting,
    flow: identities.Flow,
    who: oidc_flow.Identity,
) -> Response:
    """Connect the identity to the account the flow was started for, if this browser
    is still signed in to it."""
    live = await live_session(services, request)
    if live is None or live.account_id != flow.account_id or flow.account_id is None:
        raise Unauthorized("Sign in to your account again, then connect it.", code="not_signed_in")
    async with services.store.tx() as conn:
        owner = await identities.account_of(conn, provider=provider.id, subject=who.subject)
        if owner is not None and owner != flow.account_id:
            raise Conflict(
                f"This {provider.name} identity already signs in to another account.",
                code="identity_taken",
            )
        if owner is None:
            await identities.link(
                conn,
                provider=provider.id,
                subject=who.subject,
                account_id=flow.account_id,
                email=who.email,
            )
    return RedirectResponse(flow.next_path, status_code=302)
