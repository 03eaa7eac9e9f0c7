"""The shared page, `/s/{share_id}` (issue 18): a snapshot of a conversation, rendered
on the server and readable without JavaScript (the page loads none).

The snapshot is read from the database on every request (no cache): a link revoked on
any instance answers 410 here at once. Text is rendered by vedika.web.markup (Markdown,
then sanitised); titles and sources are escaped by Jinja.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from vedika.services import Services
from vedika.store import shares
from vedika.web import markup

_ID = re.compile(shares.SHARE_ID_PATTERN)
DESCRIPTION_CHARS = 200


def _plain(text: str, limit: int) -> str:
    words = " ".join(re.sub(r"[#*_`>\[\]()|~]", " ", text).split())
    return words if len(words) <= limit else words[: limit - 1].rstrip() + "…"


def view(share: shares.Share) -> dict[str, Any]:
    """What the template shows: each message's HTML and its numbered sources."""
    items = []
    for n, m in enumerate(share.snapshot.get("messages", [])):
        sources = []
        for c in m.get("citations") or []:
            sources.append(
                {
                    "index": c.get("index"),
                    "title": c.get("title") or c.get("url") or "Source",
                    "url": markup.safe_url(c.get("url")),
                    "site": c.get("site"),
                    "page": c.get("page"),
                    "section": c.get("section"),
                }
            )
        cite = f"m{n}-source"
        indexes = frozenset(s["index"] for s in sources if isinstance(s["index"], int))
        items.append(
            {
                "role": m.get("role"),
                "model": m.get("model"),
                "html": markup.render(str(m.get("content") or ""), cite=cite, indexes=indexes),
                "cite": cite,
                "sources": sources,
            }
        )
    first_answer: dict[str, Any] = next(
        (m for m in share.snapshot.get("messages", []) if m["role"] != "user"), {}
    )
    first_question: dict[str, Any] = next(
        (m for m in share.snapshot.get("messages", []) if m["role"] == "user"), {}
    )
    description = _plain(
        str(first_answer.get("content") or first_question.get("content") or share.title),
        DESCRIPTION_CHARS,
    )
    return {"items": items, "description": description}


async def shared_page(request: Request, share_id: str, render: Any) -> Response:
    services: Services = request.app.state.services
    share = None
    if _ID.fullmatch(share_id):
        share = await shares.public_share(services.store, share_id=share_id)
    if share is None:
        response = render(request, "shared_gone.html", status_code=404, gone=False)
    elif share.revoked_at is not None:
        response = render(request, "shared_gone.html", status_code=410, gone=True)
    else:
        response = render(
            request,
            "shared.html",
            share=share,
            url=f"{str(request.base_url).rstrip('/')}/s/{share.id}",
            shared_at=share.updated_at.strftime("%d %B %Y"),
            **view(share),
        )
        if not share.allow_indexing:
            response.headers["X-Robots-Tag"] = "noindex"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
