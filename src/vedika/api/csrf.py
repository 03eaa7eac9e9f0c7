"""Cross-site request forgery: the account endpoints' state changes (docs/accounts.md).

A browser attaches cookies to requests another site makes it send; it never attaches
an `Authorization` header on its own. So a call that brings a bearer token is not
forged and passes. Every other state change on an account endpoint (cookie-
authenticated, or no credentials at all: sign-in and sign-up, where a forged request
would sign the victim in to the attacker's account and hand it their questions) must
carry `X-Requested-With` (any value): a header a cross-site page cannot add without a
CORS preflight, which only `VEDIKA_CORS_ORIGINS` pass. An `Origin`, when sent, must
also be the server's own or a listed one. `SameSite=Lax` cookies are the first wall;
this is the second.
"""

from __future__ import annotations

from fastapi import Request

from vedika.api.deps import ServicesDep
from vedika.api.origins import origin_allowed
from vedika.errors import Forbidden

HEADER = "x-requested-with"


def _bearer(request: Request) -> bool:
    auth = request.headers.get("authorization", "")
    return auth[:7].lower() == "bearer " and bool(auth[7:].strip())


async def csrf_guard(request: Request, services: ServicesDep) -> None:
    """A FastAPI dependency for POST/DELETE routes of the account endpoints."""
    if _bearer(request):
        return
    origin = request.headers.get("origin")
    host = request.headers.get("host")
    if not request.headers.get(HEADER) or not origin_allowed(
        origin, host, services.settings.cors_origins
    ):
        raise Forbidden(
            "This request could have come from another site. Send it with the header "
            "'X-Requested-With' from this site's pages, or with 'Authorization: Bearer'.",
            code="csrf_refused",
        )
