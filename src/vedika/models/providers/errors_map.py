"""Turning HTTP-level failures into ProviderError subclasses, shared by providers."""

from __future__ import annotations

import orjson

from vedika.errors import (
    ModelNotConfigured,
    ProviderBadResponse,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
)
from vedika.models.transport import TransportError


def from_status(name: str, status: int, body: bytes, retry_after: str | None) -> ProviderError:
    detail = _detail(body)
    if status == 429:
        wait = f" Try again in {retry_after} seconds." if retry_after else " Try again shortly."
        return ProviderRateLimited(
            f"The model provider {name} is busy (rate limited).{wait}",
            headers={"Retry-After": retry_after} if retry_after else None,
        )
    if status in (401, 403):
        return ProviderError(
            f"The model provider {name} refused our credentials; the operator should check "
            "the API key.",
            code="provider_auth",
            retryable=False,
        )
    if status == 404:
        return ModelNotConfigured(f"The model provider {name} does not know this model.{detail}")
    if status >= 500:
        return ProviderUnavailable(f"The model provider {name} had an error ({status}).")
    return ProviderBadResponse(
        f"The model provider {name} rejected the request ({status}).{detail}",
        details={"upstream_status": status},  # e.g. a model that cannot take `tools`
    )


def _detail(body: bytes) -> str:
    try:
        data = orjson.loads(body)
        message = data.get("error", {}).get("message") if isinstance(data, dict) else None
    except (orjson.JSONDecodeError, AttributeError):
        return ""
    return f" It said: {str(message)[:200].rstrip('.')!r}." if message else ""


def from_transport(name: str, exc: TransportError) -> ProviderError:
    if exc.kind == "timeout":
        return ProviderTimeout(f"The model provider {name} did not answer in time.")
    if exc.kind == "connect":
        return ProviderUnavailable(f"Could not reach the model provider {name}.")
    return ProviderUnavailable(f"The connection to the model provider {name} broke off mid-answer.")


def cut_off(name: str) -> ProviderUnavailable:
    return ProviderUnavailable(f"The answer from {name} was cut off before it finished.")


def garbled(name: str) -> ProviderBadResponse:
    return ProviderBadResponse(f"The model provider {name} sent a garbled answer.")
