"""The OpenID Connect protocol parts on their own: the authorization request (PKCE
S256, state, nonce), the discovery document's checks, the ID token's signature and
claims (issuer, audience and azp, expiry, issue time, nonce), a key rotated at the
provider, and `next` kept to local paths."""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from vedika.api.oidc import safe_next
from vedika.errors import ProviderUnavailable, Unauthorized
from vedika.identity.oidc.discovery import Metadata, Providers, parse_metadata
from vedika.identity.oidc.flow import begin, check_claims, check_id_token
from vedika.settings import OidcProviderSetting, Settings

ISSUER = "https://id.example.org"
PROVIDER = OidcProviderSetting(
    id="ex", name="Example", issuer=ISSUER, client_id="vedika", client_secret="s3cret"
)
META = Metadata(
    issuer=ISSUER,
    authorization_endpoint=f"{ISSUER}/authorize",
    token_endpoint=f"{ISSUER}/token",
    jwks_uri=f"{ISSUER}/jwks",
    token_auth_methods=("client_secret_basic",),
    signing_algs=("RS256",),
)


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "sub": "user-1",
        "aud": "vedika",
        "exp": now + 300,
        "iat": now,
        "nonce": "n-1",
        "email": "ana@example.org",
        "email_verified": True,
        "name": "Ana",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def test_the_authorization_request_has_pkce_state_and_nonce() -> None:
    one = begin(PROVIDER, META, "https://v.example/auth/oidc/ex/callback")
    two = begin(PROVIDER, META, "https://v.example/auth/oidc/ex/callback")
    assert len({one.state, two.state, one.nonce, two.nonce, one.verifier}) == 5
    parts = urlsplit(one.url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == META.authorization_endpoint
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert q["response_type"] == "code" and q["client_id"] == "vedika"
    assert q["state"] == one.state and q["nonce"] == one.nonce
    assert q["scope"] == "openid email profile"
    assert q["redirect_uri"] == "https://v.example/auth/oidc/ex/callback"
    assert q["code_challenge_method"] == "S256"
    digest = hashlib.sha256(one.verifier.encode()).digest()
    assert q["code_challenge"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert 43 <= len(one.verifier) <= 128  # RFC 7636 4.1


def test_good_claims_give_the_identity() -> None:
    who = check_claims(claims(), issuer=ISSUER, client_id="vedika", nonce="n-1")
    assert (who.subject, who.email, who.email_verified, who.name) == (
        "user-1",
        "ana@example.org",
        True,
        "Ana",
    )
    several = claims(aud=["vedika", "other"], azp="vedika")
    assert check_claims(several, issuer=ISSUER, client_id="vedika", nonce="n-1").subject


@pytest.mark.parametrize(
    "changes",
    [
        {"iss": "https://evil.example"},
        {"aud": "another-client"},
        {"aud": ["vedika", "other"]},  # several audiences and no azp
        {"aud": ["vedika", "other"], "azp": "other"},
        {"exp": int(time.time()) - 3600},
        {"iat": int(time.time()) - 7200},  # issued long ago
        {"nonce": "n-2"},
        {"nonce": None},
        {"sub": None},
        {"exp": None},
    ],
)
def test_bad_claims_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(Unauthorized) as caught:
        check_claims(claims(**changes), issuer=ISSUER, client_id="vedika", nonce="n-1")
    assert caught.value.code == "oidc_token_invalid"


def test_the_discovery_document_is_checked() -> None:
    doc = {
        "issuer": ISSUER,
        "authorization_endpoint": f"{ISSUER}/a",
        "token_endpoint": f"{ISSUER}/t",
        "jwks_uri": f"{ISSUER}/k",
    }
    meta = parse_metadata(PROVIDER, doc)
    assert meta.token_endpoint == f"{ISSUER}/t" and meta.signing_algs == ("RS256",)
    for bad in ({**doc, "issuer": "https://evil.example"}, {**doc, "jwks_uri": None}, [], "x"):
        with pytest.raises(ProviderUnavailable):
            parse_metadata(PROVIDER, bad)


class FakeIssuer:
    """The discovery and JWKS endpoints of an issuer, served in-process (httpx's
    MockTransport): its signing key can rotate."""

    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig"})
        self.fetches = 0

    def rotate(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "k2", "use": "sig"})

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/openid-configuration":
            return httpx.Response(
                200,
                json={
                    "issuer": ISSUER,
                    "authorization_endpoint": f"{ISSUER}/authorize",
                    "token_endpoint": f"{ISSUER}/token",
                    "jwks_uri": f"{ISSUER}/jwks",
                    "id_token_signing_alg_values_supported": ["RS256"],
                },
            )
        if request.url.path == "/jwks":
            self.fetches += 1
            return httpx.Response(200, json=KeySet([self.key]).as_dict(private=False))
        return httpx.Response(404)

    def sign(self, payload: dict[str, Any], key: RSAKey | None = None) -> str:
        key = key or self.key
        return jwt.encode({"alg": "RS256", "kid": key.kid}, payload, key)


async def test_id_tokens_are_verified_with_the_providers_keys() -> None:
    fake = FakeIssuer()
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake.handler)) as http:
        providers = Providers([PROVIDER], http, ttl=3600, timeout=5)
        meta = await providers.metadata(PROVIDER)
        assert meta is await providers.metadata(PROVIDER)  # cached
        who = await check_id_token(providers, PROVIDER, meta, fake.sign(claims()), nonce="n-1")
        assert who.subject == "user-1" and fake.fetches == 1

        # Signed by a key the provider never published: refused.
        stranger = RSAKey.generate_key(2048, parameters={"kid": "k1"})
        with pytest.raises(Unauthorized):
            await check_id_token(
                providers, PROVIDER, meta, fake.sign(claims(), stranger), nonce="n-1"
            )
        # Altered after signing: refused.
        token = fake.sign(claims())
        head, _body, sig = token.split(".")
        forged_body = base64.urlsafe_b64encode(jwt.json.dumps(claims(sub="admin")).encode()).rstrip(
            b"="
        )
        with pytest.raises(Unauthorized):
            await check_id_token(
                providers, PROVIDER, meta, f"{head}.{forged_body.decode()}.{sig}", nonce="n-1"
            )
        # Unsigned ("alg": "none"): refused.
        none = (
            base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
            + "."
            + forged_body.decode()
            + "."
        )
        with pytest.raises(Unauthorized):
            await check_id_token(providers, PROVIDER, meta, none, nonce="n-1")

        # The provider rotates its key: the new kid makes us fetch the keys again.
        fake.rotate()
        before = fake.fetches
        who = await check_id_token(providers, PROVIDER, meta, fake.sign(claims()), nonce="n-1")
        assert who.subject == "user-1" and fake.fetches == before + 1


async def test_an_unreachable_provider_is_unavailable_not_a_crash() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
        providers = Providers([PROVIDER], http, ttl=3600, timeout=5)
        with pytest.raises(ProviderUnavailable) as caught:
            await providers.metadata(PROVIDER)
        assert caught.value.code == "oidc_provider_unavailable"


def test_next_is_a_local_path_only() -> None:
    assert safe_next("/chat/abc?x=1") == "/chat/abc?x=1"
    for bad in (None, "", "https://evil.example", "//evil.example", "/\\evil.example", "x"):
        assert safe_next(bad) == "/"
    assert safe_next("/a\r\nSet-Cookie: x") == "/"


def test_providers_setting_is_checked() -> None:
    settings = Settings(
        oidc_providers=[
            {
                "id": "kc",
                "name": "Keycloak",
                "issuer": "https://kc.example/realms/x/",
                "client_id": "v",
                "scopes": ["email"],
            }
        ]
    )
    (kc,) = settings.oidc_providers
    assert kc.issuer == "https://kc.example/realms/x" and kc.scopes == ["openid", "email"]
    assert settings.masked()["VEDIKA_OIDC_PROVIDERS"][0]["client_secret"] == ""
    for bad in (
        [{"id": "Bad Id", "name": "x", "issuer": "https://a", "client_id": "c"}],
        [{"id": "a", "name": "x", "issuer": "ftp://a", "client_id": "c"}],
        [{"id": "a", "name": "x", "issuer": "https://a", "client_id": "c"}] * 2,
    ):
        with pytest.raises(ValueError):
            Settings(oidc_providers=bad)
