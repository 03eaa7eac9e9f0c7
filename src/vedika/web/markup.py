"""Markdown to safe HTML on the server, for pages without JavaScript (the shared page).

markdown-it-py (CommonMark, tables, strikethrough) with raw HTML off, so HTML in the
text comes out as text; then nh3 (ammonia) keeps only the tags and attributes below,
links only to http, https and mailto (relative links to this page's own anchors too),
and no event handlers, scripts, styles or images (a shared page loads nothing from
elsewhere). The same safety the pages' own renderer keeps (static/js/markdown.js).
"""

from __future__ import annotations

import re

import nh3
from markdown_it import MarkdownIt

_MD = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable(
    ["table", "strikethrough"]
)

TAGS = {
    "a", "p", "br", "hr", "strong", "em", "del", "s", "code", "pre", "blockquote",
    "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody",
    "tr", "th", "td", "sup",
}  # fmt: skip
ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "th": {"align"}, "td": {"align"}}
SCHEMES = {"http", "https", "mailto"}
_MARKER = re.compile(r"\[(\d{1,3})\](?![(\[:])")


def render(text: str, *, cite: str | None = None, indexes: frozenset[int] = frozenset()) -> str:
    """`text` (Markdown) as sanitised HTML. With `cite`, a citation marker `[n]` of one of
    `indexes` becomes a link to `#{cite}-{n}` (the numbered source below the answer)."""
    if cite is not None and indexes:

        def link(match: re.Match[str]) -> str:
            n = int(match.group(1))
            return f"[\\[{n}\\]](#{cite}-{n})" if n in indexes else match.group(0)

        text = _MARKER.sub(link, text)
    return sanitise(_MD.render(text))


def sanitise(html: str) -> str:
    return nh3.clean(
        html,
        tags=TAGS,
        attributes=ATTRIBUTES,
        url_schemes=SCHEMES,
        link_rel="noopener noreferrer nofollow ugc",
        strip_comments=True,
    )


def safe_url(url: str | None) -> str | None:
    """A source's address if it may be a link (http or https), else None."""
    if not url:
        return None
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    return url if scheme in ("http", "https") and "\\" not in url else None
