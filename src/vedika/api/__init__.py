"""The HTTP and WebSocket surface: routers, request dependencies, middleware, error
handlers. Nothing below this package imports it (import-linter's layer contract)."""

from __future__ import annotations

from fastapi import APIRouter

from vedika.api import (
    accounts,
    admin,
    apikeys,
    chat,
    coins,
    files,
    models,
    mydata,
    openai_compat,
    ops,
    password_reset,
    sessions,
    socket,
    sse,
    voice,
)


def routers() -> list[APIRouter]:
    """Every router of the public API, in the order the OpenAPI document lists them."""
    return [
        sessions.router,
        accounts.router,
        apikeys.router,
        mydata.router,
        password_reset.router,
        admin.router,
        coins.router,
        models.router,
        chat.router,
        sse.router,
        socket.router,
        files.router,
        voice.router,
        openai_compat.router,
        ops.router,
    ]
