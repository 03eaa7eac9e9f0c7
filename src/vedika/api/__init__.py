"""The HTTP and WebSocket surface: routers, request dependencies, middleware, error
handlers. Nothing below this package imports it (import-linter's layer contract)."""

from __future__ import annotations

from fastapi import APIRouter

from vedika.api import (
    accounts,
    chat,
    coins,
    files,
    models,
    mydata,
    ops,
    sessions,
    share,
    socket,
    sse,
    voice,
)


def routers() -> list[APIRouter]:
    """Every router of the public API, in the order the OpenAPI document lists them."""
    return [
        sessions.router,
        accounts.router,
        mydata.router,
        coins.router,
        models.router,
        chat.router,
        sse.router,
        socket.router,
        files.router,
        share.router,
        voice.router,
        ops.router,
    ]
