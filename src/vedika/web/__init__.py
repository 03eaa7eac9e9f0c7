"""The pages: the home chatbox and the chat page, served by the API server.

The page routes only render a shell; every piece of data reaches the browser
through the public API (REST, WebSocket, SSE), exactly as any third-party client
would get it. Nothing is built at install or run time: Jinja templates, CSS and
vanilla ES modules ship in the package, third-party browser code is vendored
under ``static/vendor/`` with its licence.

Static files are served twice: under ``/static/`` (stable names, revalidated)
and under ``/static/v/<digest>/`` where ``<digest>`` hashes every static file.
Templates link the digest path, so an upgrade never mixes old and new modules
(relative ``import`` inside a module inherits the digest) and those responses
can be cached as immutable.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.types import Scope

__all__ = ["PAGE_CSP", "install_web", "static_digest"]

WEB_DIR = Path(__file__).resolve().parent
STATIC_DIR = WEB_DIR / "static"
TEMPLATES_DIR = WEB_DIR / "templates"

# The policy the pages are written for. The server's middleware sends it (with the
# other security headers) on every response; the browser tests check it is there.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; media-src 'self' blob:; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)

# Conversation ids are opaque but short and URL-safe; anything else is not a page.
_CONVERSATION_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def static_digest(directory: Path = STATIC_DIR) -> str:
    """A short hash of every file under ``directory`` (names and bytes)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(path.relative_to(directory).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


class _ImmutableStaticFiles(StaticFiles):
    """Static files under a content digest: safe to cache for a year."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response


class _RevalidatedStaticFiles(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.setdefault("Cache-Control", "no-cache")
        return response


def install_web(app: FastAPI) -> None:
    """Add ``GET /``, ``GET /chat/{conversation_id}``, ``/admin``, ``/reset-password``
    and ``/static`` to ``app``."""
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    version = static_digest()
    static_url = f"/static/v/{version}"

    # The digest mount must come first: "/static" would otherwise swallow it.
    app.mount(static_url, _ImmutableStaticFiles(directory=STATIC_DIR), name="static-versioned")
    app.mount("/static", _RevalidatedStaticFiles(directory=STATIC_DIR), name="static")

    def render(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
        response = templates.TemplateResponse(
            request,
            template,
            {"static_url": static_url, **context},
            status_code=status_code,
        )
        response.headers["Cache-Control"] = "no-cache"
        return response

    async def home(request: Request) -> Response:
        return render(request, "home.html", page="home", conversation_id="")

    async def chat(request: Request, conversation_id: str) -> Response:
        if not _CONVERSATION_ID.fullmatch(conversation_id):
            return render(
                request, "not_found.html", status_code=404, page="not-found", conversation_id=""
            )
        # Whether the conversation exists (and is the visitor's) is the API's
        # business: the page asks for it like any client and says so if not.
        return render(request, "chat.html", page="chat", conversation_id=conversation_id)

    async def admin(request: Request) -> Response:
        # Who may see it is the API's business (GET /auth/me, the /admin calls).
        return render(request, "admin.html", page="admin", conversation_id="")

    async def reset_password(request: Request) -> Response:
        return render(request, "reset_password.html", page="reset-password", conversation_id="")

    async def keys(request: Request) -> Response:
        # Whose keys is the API's business (GET /auth/api-keys with the session).
        return render(request, "keys.html", page="keys", conversation_id="")

    async def shared(request: Request, share_id: str) -> Response:
        from vedika.web.shared import shared_page

        return await shared_page(request, share_id, render)

    app.add_api_route(
        "/s/{share_id}",
        shared,
        methods=["GET"],
        include_in_schema=False,
        response_class=HTMLResponse,
        name="shared_page",
    )
    app.add_api_route(
        "/", home, methods=["GET"], include_in_schema=False, response_class=HTMLResponse
    )
    for path, page in (("/admin", admin), ("/reset-password", reset_password), ("/keys", keys)):
        app.add_api_route(
            path, page, methods=["GET"], include_in_schema=False, response_class=HTMLResponse
        )

    async def signin(request: Request) -> Response:  # sign in and sign up: one template
        mode = "signup" if request.url.path == "/signup" else "signin"
        return render(request, "account.html", page="signin", mode=mode, conversation_id="")

    for path in ("/signin", "/signup"):
        app.add_api_route(
            path, signin, methods=["GET"], include_in_schema=False, response_class=HTMLResponse
        )
    app.add_api_route(
        "/chat/{conversation_id}",
        chat,
        methods=["GET"],
        include_in_schema=False,
        response_class=HTMLResponse,
    )
