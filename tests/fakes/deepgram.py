"""Fake Deepgram management API for tests (a test fixture, never product code): real
HTTP on loopback, served by uvicorn in a thread of the test process.

``GET  /v1/projects``                 ``{projects: [{project_id, name}]}``
``POST /v1/projects/{id}/keys``       a new key ``{api_key_id, key, comment, scopes,
                                      expiration_date}``; 401 unless
                                      ``Authorization: Token <the operator key>``.
Every request is recorded in ``FakeDeepgram.requests`` (method, path, headers, body).
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

PROJECT = "proj-fake-1"


class FakeDeepgram:
    def __init__(self, operator_key: str) -> None:
        self.operator_key = operator_key
        self.requests: list[dict[str, Any]] = []
        self.issued: list[str] = []
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    def _app(self) -> Starlette:
        async def record(request: Request) -> dict[str, Any] | None:
            body = await request.json() if request.method == "POST" else None
            self.requests.append(
                {
                    "method": request.method,
                    "path": request.url.path,
                    "authorization": request.headers.get("authorization"),
                    "body": body,
                }
            )
            return body

        def authorised(request: Request) -> bool:
            return request.headers.get("authorization") == f"Token {self.operator_key}"

        async def projects(request: Request) -> JSONResponse:
            await record(request)
            if not authorised(request):
                return JSONResponse({"err_code": "INVALID_AUTH"}, status_code=401)
            return JSONResponse({"projects": [{"project_id": PROJECT, "name": "Fake"}]})

        async def keys(request: Request) -> JSONResponse:
            body = await record(request) or {}
            if not authorised(request):
                return JSONResponse({"err_code": "INVALID_AUTH"}, status_code=401)
            if request.path_params["project"] != PROJECT:
                return JSONResponse({"err_code": "NOT_FOUND"}, status_code=404)
            key = secrets.token_hex(20)
            self.issued.append(key)
            return JSONResponse(
                {
                    "api_key_id": secrets.token_hex(8),
                    "key": key,
                    "comment": body.get("comment"),
                    "scopes": body.get("scopes"),
                    "time_to_live_in_seconds": body.get("time_to_live_in_seconds"),
                }
            )

        return Starlette(
            routes=[
                Route("/v1/projects", projects),
                Route("/v1/projects/{project}/keys", keys, methods=["POST"]),
            ]
        )

    def __enter__(self) -> FakeDeepgram:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(self._app(), log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(5)
