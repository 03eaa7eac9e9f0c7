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


def install_error_handlers(app: FastAPI) -> None:
    def answer(req: Request, exc: Exception) -> JSONResponse:
        status, err = error_answer(exc, getattr(req.app.state, "services", None))
        return JSONResponse(error_body(err), status_code=status, headers=err.headers)

    @app.exception_handler(VedikaError)
    async def _vedika(req: Request, exc: VedikaError) -> JSONResponse:
        return answer(req, exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_req: Request, exc: RequestValidationError) -> JSONResponse:
        details = _validation_details(exc)
        first = details[0] if details else {"field": "body", "problem": "invalid"}
        err = VedikaError(
            f"The request is invalid: {first['field']}: {first['problem']}.",
            code="validation_error",
            status=400,
            details=details,
        )
        return JSONResponse(error_body(err), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 400: "bad_request"}
        message = {
            404: "There is nothing at this address.",
            405: "This address does not accept that method.",
        }.get(exc.status_code, str(exc.detail))
        err = VedikaError(
            message, code=codes.get(exc.status_code, "http_error"), status=exc.status_code
        )
        return JSONResponse(
            error_body(err), status_code=exc.status_code, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(OperationalError)
    @app.exception_handler(DBAPIError)
    @app.exception_handler(ConnectionError)
    async def _db_down(req: Request, exc: Exception) -> JSONResponse:
        return answer(req, exc)

    @app.exception_handler(Exception)
    async def _crash(req: Request, exc: Exception) -> JSONResponse:
        return answer(req, exc)
