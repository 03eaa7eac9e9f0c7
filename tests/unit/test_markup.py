"""The server's Markdown renderer for pages without JavaScript (vedika.web.markup)."""

from __future__ import annotations

import pytest

from tests.support.safe_html import parse, unsafe_parts
from tests.support.xss import PAYLOADS
from vedika.web import markup


def test_markdown_renders_the_usual_constructs() -> None:
    html = markup.render(
        "# Title\n\n**bold** *em* `code` ~~gone~~\n\n- one\n- two\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n\n[site](https://example.org/x)\n\n```\nx < y\n```"
    )
    tags = [t for t, _ in parse(html)[0]]
    for tag in ("h1", "strong", "em", "code", "s", "ul", "li", "table", "td", "a", "pre"):
        assert tag in tags, (tag, html)
    link = next(a for t, a in parse(html)[0] if t == "a")
    assert link["href"] == "https://example.org/x"
    assert "nofollow" in link["rel"] and "noopener" in link["rel"]
    assert "x &lt; y" in html


def test_citation_markers_link_to_their_sources_only() -> None:
    html = markup.render("Lakes [1] and [2], not [9].", cite="m1-source", indexes=frozenset({1, 2}))
    hrefs = [a["href"] for t, a in parse(html)[0] if t == "a"]
    assert hrefs == ["#m1-source-1", "#m1-source-2"]
    assert "[9]" in parse(html)[1]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_no_payload_survives_as_markup(payload: str) -> None:
    for text in (payload, f"Some text {payload} more", f"- item {payload}\n\n> {payload}"):
        html = markup.render(text, cite="c", indexes=frozenset({1}))
        assert unsafe_parts(html) == [], (payload, html)


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("https://example.org/a", True),
        ("http://example.org/a", True),
        ("javascript:alert(1)", False),
        ("JavaScript:alert(1)", False),
        ("data:text/html,x", False),
        ("//evil.example/x", False),
        ("", False),
        (None, False),
    ],
)
def test_source_links_are_http_only(url: str | None, safe: bool) -> None:
    assert (markup.safe_url(url) is not None) is safe
