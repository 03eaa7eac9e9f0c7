"""`/docs`: Swagger UI served from this server, never from a CDN.

FastAPI's own page loads Swagger UI from a CDN (which a server without internet
cannot reach, and which the page's CSP would have to trust) and starts it with an
inline script (which would need `'unsafe-inline'`). This page links the vendored
copy under ``static/vendor/swagger-ui/`` and starts it from a static file, so it
runs under the same `'self'`-only policy as the other pages.
"""

from __future__ import annotations

from html import escape

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

__all__ = ["DOCS_ASSETS", "docs_page", "install_docs"]

_VENDOR = "/static/vendor/swagger-ui"
DOCS_ASSETS = (
    f"{_VENDOR}/swagger-ui.css",
    f"{_VENDOR}/swagger-ui-bundle.js",
    "/static/docs/swagger-init.js",
    # our corrections to Swagger UI's colours (WCAG AA contrast; tests/browser/axe.py)
    "/static/docs/swagger-a11y.css",
)


def docs_page(title: str, openapi_url: str) -> str:
    css, bundle, init, a11y = DOCS_ASSETS
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} - API</title>
<link rel="icon" type="image/png" href="{_VENDOR}/favicon-32x32.png">
<link rel="stylesheet" href="{css}">
<link rel="stylesheet" href="{a11y}">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{bundle}"></script>
<script src="{init}" data-openapi-url="{escape(openapi_url)}"></script>
</body>
</html>
"""


def install_docs(app: FastAPI) -> None:
    """`GET /docs` (the app must have an `openapi_url`)."""
    html = docs_page(app.title, app.openapi_url or "/openapi.json")

    async def swagger_ui() -> HTMLResponse:
        return HTMLResponse(html, headers={"Cache-Control": "no-cache"})

    app.add_api_route("/docs", swagger_ui, methods=["GET"], include_in_schema=False)
