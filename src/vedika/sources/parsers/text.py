"""Plain text and Markdown. Form feeds mark pages; Markdown headings mark sections."""

from __future__ import annotations

import re
from pathlib import Path

from vedika.sources.parsers.base import (
    ParsedDocument,
    ParseFailure,
    ParseLimits,
    Parser,
    Section,
    register,
    too_much_text,
)
from vedika.sources.parsers.detect import decode_text

_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t#]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")


def read_text(path: Path, limits: ParseLimits) -> str:
    data = path.read_bytes()
    text = decode_text(data).replace("\r\n", "\n").replace("\r", "\n")
    if len(text) > limits.max_chars:
        raise too_much_text(limits)
    if not text.strip():
        raise ParseFailure("empty", "This file has no text in it.")
    return text


def markdown_sections(text: str) -> list[Section]:
    """Split at ATX headings (outside code fences); each section keeps its heading line
    (and the headings right above it, when they have no text of their own)."""
    sections: list[Section] = []
    heading: str | None = None
    lines: list[str] = []
    body = False  # a heading right after a heading stays with it, as context
    fenced = False
    for line in text.split("\n"):
        if _FENCE.match(line):
            fenced = not fenced
        match = None if fenced else _ATX.match(line)
        if match:
            if body:
                sections.append(Section("\n".join(lines).strip(), heading=heading))
                lines = []
            heading, body = match.group(2).strip()[:300], False
            lines.append(line)
        else:
            lines.append(line)
            body = body or bool(line.strip())
    if "".join(lines).strip():
        sections.append(Section("\n".join(lines).strip(), heading=heading))
    return sections


@register
class PlainText(Parser):
    kind = "text"
    content_type = "text/plain"
    extensions = (".txt", ".text", ".log")
    label = "plain text"

    def parse(self, path: Path, limits: ParseLimits) -> ParsedDocument:
        text = read_text(path, limits)
        if "\f" in text:
            pages = text.split("\f")
            sections = [Section(t.strip(), page=i) for i, t in enumerate(pages, 1) if t.strip()]
            return ParsedDocument(self.kind, self.content_type, sections, pages=len(pages))
        return ParsedDocument(self.kind, self.content_type, [Section(text.strip())])


@register
class Markdown(Parser):
    kind = "markdown"
    content_type = "text/markdown"
    extensions = (".md", ".markdown")
    label = "Markdown"

    def parse(self, path: Path, limits: ParseLimits) -> ParsedDocument:
        sections = markdown_sections(read_text(path, limits))
        title = next((s.heading for s in sections if s.heading), None)
        return ParsedDocument(self.kind, self.content_type, sections, title=title)
