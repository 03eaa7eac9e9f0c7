"""Every error a client can get is the one JSON shape of vedika.errors.error_body:
our own errors, invalid requests, Starlette's 404/405, a database away, a crash."""

from __future__ import annotations

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from vedika.api.responses import JSONResponse
from vedika.errors import ServiceUnavailable, VedikaError, error_body
from vedika.services import Services

log = structlog.get_logger(__name__)


def _validation_details(exc: RequestValidationError) -> list[dict[str, object]]:
    out = []
    for err in exc.errors()[:20]:
        loc = [str(x) for x in err.get("loc", ()) if x != "body"]
        out.append({"field": ".".join(loc) or "body", "problem": err.get("msg", "invalid")})
    return out


def error_answer(exc: Exception, services: Services | None) -> tuple[int, VedikaError]:
    """The status and error a client gets for `exc` raised while handling its call:
    our own errors as they are, a database away as 503 (and /health checks anew), any
    other failure as 500 (logged). The framework's handlers and the fast lane share it."""
    if isinstance(exc, VedikaError):
        return exc.status, exc
    if isinstance(exc, OperationalError | DBAPIError | ConnectionError):
        log.warning("database.unavailable", error=str(exc)[:300])
        if services is not None:
            services.health.invalidate()
        err: VedikaError = ServiceUnavailable(
            "The database is unavailable right now; nothing was changed. Please retry shortly.",
            code="database_unavailable",
            headers={"Retry-After": "5"},
        )
        return 503, err
    log.error("http.crashed", exc_info=exc)
    return 500, VedikaError("Something went wrong on our side. Please retry.")


# OpenAI's error `type` by status (the /v1 endpoints, vedika.api.openai_compat).
_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


def openai_error_body(err: VedikaError) -> dict[str, object]:
    """`{"error": {"message", "type", "code", "param"}}`: OpenAI's shape, for /v1."""
    details = err.details if isinstance(err.details, dict) else {}
    param = details.get("param")
    if param is None and isinstance(err.details, list) and err.details:
        first = err.details[0]
        param = first.get("field") if isinstance(first, dict) else None
    kind = _OPENAI_TYPES.get(err.status, "server_error" if err.status >= 500 else "api_error")
    return {"error": {"message": err.message, "type": kind, "code": err.code, "param": param}}


def render(req: Request, err: VedikaError, status: int) -> JSONResponse:
    """The error as the caller's API shapes it: OpenAI's under /v1/, else ours."""
    if req.url.path.startswith("/v1/"):
        return JSONResponse(openai_error_body(err), status_code=status, headers=err.headers)
    return JSONResponse(error_body(err), status_code=status, headers=err.headers)


def install_error_handlers(app: FastAPI) -> None:
    def answer(req: Request, exc: Exception) -> JSONResponse:
        status, err = error_answer(exc, getattr(req.app.state, "services", None))
        return render(req, err, status)

    @app.exception_handler(VedikaError)
    async def _vedika(req: Request, exc: VedikaError) -> JSONResponse:
        return answer(req, exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(req: Request, exc: RequestValidationError) -> JSONResponse:
        details = _validation_details(exc)
        first = details[0] if details else {"field": "body", "problem": "invalid"}
        err = VedikaError(
            f"The request is invalid: {first['field']}: {first['problem']}.",
            code="validation_error",
            status=400,
            details=details,
        )
        return render(req, err, 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(req: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 400: "bad_request"}
        message = {
            404: "There is nothing at this address.",
            405: "This address does not accept that method.",
        }.get(exc.status_code, str(exc.detail))
        err = VedikaError(
            message, code=codes.get(exc.status_code, "http_error"), status=exc.status_code
        )
        err.headers = dict(getattr(exc, "headers", None) or {})
        return render(req, err, exc.status_code)

    @app.exception_handler(OperationalError)
    @app.exception_handler(DBAPIError)
    @app.exception_handler(ConnectionError)
    async def _db_down(req: Request, exc: Exception) -> JSONResponse:
        return answer(req, exc)

    @app.exception_handler(Exception)
    async def _crash(req: Request, exc: Exception) -> JSONResponse:
        return answer(req, exc)
