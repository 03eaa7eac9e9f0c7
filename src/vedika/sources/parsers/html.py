"""HTML: the main text only (trafilatura), as Markdown so headings become sections.

Also used for fetched web pages (`extract_page`), in the same capped child process.
"""

from __future__ import annotations

from pathlib import Path

import trafilatura

from vedika.sources.parsers.base import (
    ParsedDocument,
    ParseFailure,
    ParseLimits,
    Parser,
    register,
)
from vedika.sources.parsers.text import markdown_sections, read_text

MAX_PAGE_TEXT = 200_000


def main_text(html: str, url: str | None = None) -> tuple[str | None, str]:
    """(title, main text as Markdown); the whole visible text when no article is found."""
    doc = trafilatura.bare_extraction(
        html,
        url=url,
        with_metadata=True,
        include_comments=False,
        include_tables=True,
        favor_recall=True,
        output_format="python",
    )
    title = getattr(doc, "title", None) if doc is not None else None
    text = trafilatura.extract(
        html,
        url=url,
        output_format="markdown",
        include_comments=False,
        include_tables=True,
        favor_recall=True,
    )
    if not text:
        text = trafilatura.html2txt(html) or ""
    return (str(title).strip() or None) if title else None, text.strip()


def extract_page(html: str, url: str) -> tuple[str | None, str]:
    """A fetched page's title and main text, capped (run in the parser's child process)."""
    title, text = main_text(html, url)
    return title, text[:MAX_PAGE_TEXT]


@register
class Html(Parser):
    kind = "html"
    content_type = "text/html"
    extensions = (".html", ".htm", ".xhtml")
    label = "HTML"

    def parse(self, path: Path, limits: ParseLimits) -> ParsedDocument:
        title, text = main_text(read_text(path, limits))
        if not text:
            raise ParseFailure("no_text", "This web page has no readable text in it.")
        return ParsedDocument(self.kind, self.content_type, markdown_sections(text), title=title)
