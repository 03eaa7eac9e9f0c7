"""The configured identity providers, their discovery documents and signing keys.

One `Providers` per instance (built in vedika.services): it fetches
`{issuer}/.well-known/openid-configuration` through the instance's HTTP client, keeps
it VEDIKA_OIDC_DISCOVERY_SECONDS, and the provider's JWKS likewise (fetched again at
once when an ID token names a key it does not hold: keys rotate). A provider that
cannot be reached or answers nonsense is `ProviderUnavailable`, never a crash.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc.jwk import KeySet

from vedika.errors import NotFound, ProviderUnavailable
from vedika.settings import OidcProviderSetting


@dataclass(frozen=True, slots=True)
class Metadata:
    """What the sign-in needs of a provider's discovery document."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    token_auth_methods: tuple[str, ...]
    signing_algs: tuple[str, ...]


def unavailable(provider: OidcProviderSetting, why: str) -> ProviderUnavailable:
    return ProviderUnavailable(
        f"{provider.name} cannot be reached for sign-in right now ({why}). Try again "
        "shortly, or sign in with your email and password.",
        code="oidc_provider_unavailable",
    )


def parse_metadata(provider: OidcProviderSetting, doc: Any) -> Metadata:
    """The discovery document, checked: the issuer must be the configured one
    (OpenID Connect Discovery 1.0, section 4.3), the endpoints URLs."""
    if not isinstance(doc, dict):
        raise unavailable(provider, "its discovery document is not a JSON object")
    if str(doc.get("issuer", "")).rstrip("/") != provider.issuer:
        raise unavailable(provider, "its discovery document names another issuer")
    urls = {}
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        value = doc.get(key)
        if not isinstance(value, str) or not value.startswith(("https://", "http://")):
            raise unavailable(provider, f"its discovery document has no {key}")
        urls[key] = value
    methods = doc.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    algs = doc.get("id_token_signing_alg_values_supported") or ["RS256"]
    return Metadata(
        issuer=str(doc["issuer"]),
        token_auth_methods=tuple(str(m) for m in methods if isinstance(m, str)),
        signing_algs=tuple(str(a) for a in algs if isinstance(a, str) and a != "none"),
        **urls,
    )


class Providers:
    """The providers of VEDIKA_OIDC_PROVIDERS, with their metadata and keys cached."""

    def __init__(
        self,
        configured: list[OidcProviderSetting],
        http: httpx.AsyncClient,
        *,
        ttl: float,
        timeout: float,
    ) -> None:
        self.configured = {p.id: p for p in configured}
        self.http = http
        self.ttl = ttl
        self.timeout = timeout
        self._metadata: dict[str, tuple[float, Metadata]] = {}
        self._keys: dict[str, tuple[float, KeySet]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def get(self, provider_id: str) -> OidcProviderSetting:
        provider = self.configured.get(provider_id)
        if provider is None:
            raise NotFound("There is no such sign-in provider here.", code="unknown_provider")
        return provider

    def listed(self) -> list[dict[str, str]]:
        return [{"id": p.id, "name": p.name} for p in self.configured.values()]

    async def _get_json(self, provider: OidcProviderSetting, url: str) -> Any:
        try:
            response = await self.http.get(
                url, timeout=self.timeout, headers={"Accept": "application/json"}
            )
        except httpx.HTTPError as exc:
            raise unavailable(provider, type(exc).__name__) from None
        if response.status_code != 200:
            raise unavailable(provider, f"HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError:
            raise unavailable(provider, "an answer that is not JSON") from None

    async def metadata(self, provider: OidcProviderSetting) -> Metadata:
        cached = self._metadata.get(provider.id)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        async with self._locks.setdefault(provider.id, asyncio.Lock()):
            cached = self._metadata.get(provider.id)
            if cached and cached[0] > time.monotonic():
                return cached[1]
            doc = await self._get_json(
                provider, f"{provider.issuer}/.well-known/openid-configuration"
            )
            meta = parse_metadata(provider, doc)
            self._metadata[provider.id] = (time.monotonic() + self.ttl, meta)
            return meta

    async def keys(
        self, provider: OidcProviderSetting, meta: Metadata, *, fresh: bool = False
    ) -> KeySet:
        cached = self._keys.get(provider.id)
        if cached and cached[0] > time.monotonic() and not fresh:
            return cached[1]
        doc = await self._get_json(provider, meta.jwks_uri)
        try:
            keys = KeySet.import_key_set(doc)
        except Exception:  # joserfc raises several kinds for a malformed set
            raise unavailable(provider, "its signing keys cannot be read") from None
        self._keys[provider.id] = (time.monotonic() + self.ttl, keys)
        return keys
