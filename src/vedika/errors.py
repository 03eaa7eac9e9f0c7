"""Every error Vedika shows to a client, and the one place that renders them.

    VedikaError                      (message for a person, code, status, retryable)
    ├── BadRequest                   400 bad_request / validation_error
    ├── Unauthorized                 401 no or expired session
    ├── CreditsExhausted             402 no coins left today
    ├── Forbidden                    403 device mismatch, origin refused
    ├── NotFound                     404 unknown or not yours (never says which)
    ├── Conflict                     409 idempotency key reused with another body
    ├── PayloadTooLarge              413
    ├── UnsupportedMediaType         415 a file type Vedika cannot read (decided by content)
    ├── RateLimited                  429 with retry_after
    ├── ServiceUnavailable           503 database (or later Redis) unreachable, draining
    └── ProviderError                a model provider failed (502/503/504)
        ├── ProviderRateLimited      the provider said 429
        ├── ProviderUnavailable      refused, 5xx, reset, cut mid-stream
        ├── ProviderTimeout          no answer in time
        ├── ProviderBadResponse      malformed or error event in the stream
        └── ModelNotConfigured       the model id is unknown or its provider is off

Nothing else builds error JSON: REST uses `error_body`, the socket and SSE use
`protocol.stream_error` with the same `code` and sentence.
"""

from __future__ import annotations

from typing import Any


class VedikaError(Exception):
    status: int = 500
    code: str = "internal_error"
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        retryable: bool | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        if retryable is not None:
            self.retryable = retryable
        self.details = details
        self.headers = headers or {}


class BadRequest(VedikaError):
    status, code = 400, "bad_request"


class Unauthorized(VedikaError):
    status, code = 401, "unauthorized"


class CreditsExhausted(VedikaError):
    status, code = 402, "credits_exhausted"


class Forbidden(VedikaError):
    status, code = 403, "forbidden"


class NotFound(VedikaError):
    status, code = 404, "not_found"


class Conflict(VedikaError):
    status, code = 409, "conflict"


class PayloadTooLarge(VedikaError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(VedikaError):
    status, code = 415, "unsupported_media_type"


class RateLimited(VedikaError):
    status, code, retryable = 429, "rate_limited", True


class ServiceUnavailable(VedikaError):
    status, code, retryable = 503, "service_unavailable", True


class ProviderError(VedikaError):
    status, code, retryable = 502, "provider_error", True


class ProviderRateLimited(ProviderError):
    status, code = 503, "provider_rate_limited"


class ProviderUnavailable(ProviderError):
    status, code = 502, "provider_unavailable"


class ProviderTimeout(ProviderError):
    status, code = 504, "provider_timeout"


class ProviderBadResponse(ProviderError):
    status, code = 502, "provider_bad_response"


class ModelNotConfigured(ProviderError):
    status, code, retryable = 400, "model_not_available", False


def error_body(exc: VedikaError) -> dict[str, Any]:
    """API.md section 7: `{error, message, status_code, details?}`."""
    body: dict[str, Any] = {"error": exc.code, "message": exc.message, "status_code": exc.status}
    if exc.details is not None:
        body["details"] = exc.details
    return body
