"""The authorization code flow with PKCE (RFC 6749, RFC 7636, OpenID Connect Core 1.0).

`begin` makes what one sign-in needs: a `state` (binds the answer to the flow), a
`nonce` (binds the ID token to it) and a PKCE verifier with its S256 challenge, and the
provider's authorization URL (Authlib builds it). `exchange` trades the code for
tokens at the token endpoint; `check_id_token` verifies the ID token's signature with
the provider's keys and its claims: issuer, audience (and `azp`), expiry, issue time,
nonce, subject (joserfc). Nothing here trusts what came through the browser.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from vedika.errors import Unauthorized
from vedika.identity.oidc.discovery import Metadata, Providers, unavailable
from vedika.settings import OidcProviderSetting

LEEWAY = 60  # seconds of clock difference forgiven on exp and iat
MAX_AGE = 600  # an ID token issued longer ago than this is refused


@dataclass(frozen=True, slots=True)
class Begun:
    url: str  # where to send the browser
    state: str
    nonce: str
    verifier: str


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the provider says signed in (the ID token's claims, checked)."""

    subject: str
    email: str | None
    email_verified: bool | None
    name: str | None


def token_refused(why: str) -> Unauthorized:
    return Unauthorized(
        f"The sign-in could not be verified ({why}). Please start it again.",
        code="oidc_token_invalid",
    )


def begin(provider: OidcProviderSetting, meta: Metadata, redirect_uri: str) -> Begun:
    state, nonce, verifier = generate_token(43), generate_token(43), generate_token(64)
    url = prepare_grant_uri(
        meta.authorization_endpoint,
        client_id=provider.client_id,
        response_type="code",
        redirect_uri=redirect_uri,
        scope=" ".join(provider.scopes),
        state=state,
        nonce=nonce,
        code_challenge=create_s256_code_challenge(verifier),
        code_challenge_method="S256",
    )
    return Begun(url=url, state=state, nonce=nonce, verifier=verifier)


async def exchange(
    providers: Providers,
    provider: OidcProviderSetting,
    meta: Metadata,
    *,
    code: str,
    verifier: str,
    redirect_uri: str,
) -> dict[str, Any]:
    """The token response (with its `id_token`) for `code`."""
    secret = provider.client_secret.get_secret_value()
    extra: dict[str, str] = {}
    auth: tuple[str, str] | None = None
    if "client_secret_basic" in meta.token_auth_methods or not secret:
        auth = (provider.client_id, secret) if secret else None
        if not secret:
            extra["client_id"] = provider.client_id  # a public client
    else:  # client_secret_post
        extra = {"client_id": provider.client_id, "client_secret": secret}
    body = prepare_token_request(
        "authorization_code",
        code=code,
        redirect_uri=redirect_uri,
        code_verifier=verifier,
        **extra,
    )
    try:
        response = await providers.http.post(
            meta.token_endpoint,
            content=body,
            auth=auth or httpx.USE_CLIENT_DEFAULT,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
            timeout=providers.timeout,
        )
    except httpx.HTTPError as exc:
        raise unavailable(provider, type(exc).__name__) from None
    try:
        tokens = response.json()
    except ValueError:
        tokens = None
    if response.status_code >= 500 or not isinstance(tokens, dict):
        raise unavailable(provider, f"HTTP {response.status_code} from its token endpoint")
    if response.status_code != 200:
        # invalid_grant: a code used twice, expired, or a verifier that does not match
        raise token_refused(f"the provider said {str(tokens.get('error', 'no'))[:60]}")
    if not isinstance(tokens.get("id_token"), str):
        raise token_refused("no ID token came back")
    return tokens


def _decode(id_token: str, keys: KeySet, algs: tuple[str, ...]) -> jwt.Token:
    return jwt.decode(id_token, keys, algorithms=list(algs) or ["RS256"])


async def check_id_token(
    providers: Providers,
    provider: OidcProviderSetting,
    meta: Metadata,
    id_token: str,
    *,
    nonce: str,
    now: float | None = None,
) -> Identity:
    """The ID token's claims once its signature and claims are verified; else 401."""
    keys = await providers.keys(provider, meta)
    try:
        token = _decode(id_token, keys, meta.signing_algs)
    except (JoseError, ValueError):
        # A key we do not hold yet (rotation): fetch the keys again, once.
        keys = await providers.keys(provider, meta, fresh=True)
        try:
            token = _decode(id_token, keys, meta.signing_algs)
        except (JoseError, ValueError) as exc:
            raise token_refused(f"bad signature: {type(exc).__name__}") from None
    return check_claims(
        token.claims, issuer=meta.issuer, client_id=provider.client_id, nonce=nonce, now=now
    )


def check_claims(
    claims: dict[str, Any], *, issuer: str, client_id: str, nonce: str, now: float | None = None
) -> Identity:
    """OpenID Connect Core 1.0, 3.1.3.7: iss, aud (and azp), exp, iat, nonce, sub."""
    at = int(now if now is not None else time.time())
    registry = jwt.JWTClaimsRegistry(
        now=at,
        leeway=LEEWAY,
        iss={"essential": True, "value": issuer},
        sub={"essential": True},
        aud={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
        nonce={"essential": True, "value": nonce},
    )
    try:
        registry.validate(claims)
    except JoseError as exc:
        raise token_refused(f"{type(exc).__name__}: {exc}"[:120]) from None
    aud = claims["aud"]
    audiences = [aud] if isinstance(aud, str) else list(aud)
    if client_id not in audiences:
        raise token_refused("it was made for another client")
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise token_refused("it was made for another client")
    iat = claims["iat"]
    if not isinstance(iat, int | float) or iat < at - MAX_AGE - LEEWAY:
        raise token_refused("it is too old")
    subject = claims["sub"]
    if not subject or len(subject) > 255:
        raise token_refused("its subject is not usable")
    email = claims.get("email")
    verified = claims.get("email_verified")
    name = claims.get("name")
    return Identity(
        subject=subject,
        email=email if isinstance(email, str) and email else None,
        email_verified=verified if isinstance(verified, bool) else None,
        name=name[:100] if isinstance(name, str) and name.strip() else None,
    )
