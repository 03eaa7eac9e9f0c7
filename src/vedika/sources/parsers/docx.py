"""DOCX read with the standard library: a ZIP of XML, checked before anything inflates.

Refused before reading: parts whose declared size is over the cap, or that inflate
more than `max_ratio` times their compressed size beyond a few megabytes (zip
bombs). zipfile never yields more than a part's declared size, so the declared sizes
are the real bound. XML is parsed by defusedxml with DTDs forbidden: the parser
itself refuses a DOCTYPE or an entity wherever it is and whatever the encoding
(a byte search for "<!DOCTYPE" missed one after a long comment, or in UTF-16).
Headings (Heading 1..9, Title) start sections; Word's page-break markers, when the
file has them, give page numbers.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from xml.etree import ElementTree as ET

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from vedika.sources.parsers.base import (
    ParsedDocument,
    ParseFailure,
    ParseLimits,
    Parser,
    Section,
    register,
    too_much_text,
)

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
RATIO_FREE_BYTES = 5_000_000  # small parts may compress well without being bombs


def _bomb(what: str) -> ParseFailure:
    return ParseFailure("bomb", f"This DOCX file is a decompression bomb ({what}); it was refused.")


def check_archive(zf: zipfile.ZipFile, limits: ParseLimits) -> None:
    total = 0
    for info in zf.infolist():
        total += info.file_size
        if info.file_size > limits.max_unpacked_bytes or total > limits.max_unpacked_bytes:
            raise _bomb(f"it unpacks to more than {limits.max_unpacked_bytes:,} bytes")
        if info.file_size > RATIO_FREE_BYTES and info.file_size > limits.max_ratio * max(
            info.compress_size, 1
        ):
            raise _bomb(f"{info.filename} inflates {info.file_size // max(info.compress_size, 1)}x")


def read_part(zf: zipfile.ZipFile, name: str) -> ET.Element:
    """Parse one XML part; a DTD, an entity declaration or an external reference
    anywhere in it refuses the file (Word never writes them)."""
    try:
        root: ET.Element = SafeET.fromstring(zf.read(name), forbid_dtd=True)
    except DefusedXmlException:  # DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
        raise ParseFailure(
            "unreadable", "This DOCX file contains XML entities; it was refused."
        ) from None
    return root


def _paragraph(p: ET.Element) -> tuple[str, int, int]:
    """The paragraph's text, and the page breaks before and after its first text."""
    parts: list[str] = []
    before = after = 0
    for el in p.iter():
        tag = el.tag
        if tag == f"{W}t" and el.text:
            parts.append(el.text)
        elif tag == f"{W}tab":
            parts.append("\t")
        elif tag in (f"{W}br", f"{W}cr") and el.get(f"{W}type") != "page":
            parts.append("\n")
        elif tag == f"{W}lastRenderedPageBreak" or (
            tag == f"{W}br" and el.get(f"{W}type") == "page"
        ):
            if "".join(parts).strip():
                after += 1
            else:
                before += 1
    return "".join(parts).strip(), before, after


def _style(p: ET.Element) -> str:
    style = p.find(f"{W}pPr/{W}pStyle")
    return (style.get(f"{W}val") or "") if style is not None else ""


def _is_heading(style: str) -> bool:
    s = style.lower().replace(" ", "")
    return s.startswith("heading") or s == "title"


@register
class Docx(Parser):
    kind = "docx"
    content_type = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    extensions = (".docx",)
    label = "Word (DOCX)"

    def parse(self, path: Path, limits: ParseLimits) -> ParsedDocument:
        try:
            with zipfile.ZipFile(path) as zf:
                check_archive(zf, limits)
                root = read_part(zf, "word/document.xml")
                pages = _declared_pages(zf)
        except (zipfile.BadZipFile, KeyError, ET.ParseError, EOFError, ValueError) as exc:
            raise ParseFailure(
                "unreadable", f"This DOCX file is damaged ({type(exc).__name__})."
            ) from None
        body = root.find(f"{W}body")
        if body is None:
            raise ParseFailure("no_text", "This DOCX file has no text in it.")
        sections: list[Section] = []
        lines: list[str] = []
        heading: str | None = None
        page, had_breaks, chars = 1, False, 0
        section_page = 1
        has_text = False  # the current section has more than headings

        def close() -> None:
            text = "\n".join(lines).strip()
            if text:
                sections.append(Section(text, page=section_page, heading=heading))

        for block in body:
            if block.tag == f"{W}p":
                text, before, after = _paragraph(block)
                if before or after:
                    had_breaks = True
                if before:
                    close()
                    page += before
                    lines, section_page = [], page
                if text and _is_heading(_style(block)):
                    if has_text:  # a heading right after a heading stays with it, as context
                        close()
                        lines, section_page = [], page
                    heading, has_text = text[:300], False
                elif text:
                    has_text = True
                if text:
                    lines.append(text)
                    chars += len(text)
                if after:
                    close()
                    page += after
                    lines, section_page = [], page
            elif block.tag == f"{W}tbl":
                for row in block.iter(f"{W}tr"):
                    cells = [
                        " ".join(t for t, _b, _a in map(_paragraph, tc.iter(f"{W}p")) if t)
                        for tc in row.iter(f"{W}tc")
                    ]
                    line = " | ".join(c for c in cells if c)
                    if line:
                        lines.append(line)
                        chars += len(line)
                        has_text = True
            if chars > limits.max_chars:
                raise too_much_text(limits)
        close()
        if not sections:
            raise ParseFailure("no_text", "This DOCX file has no text in it.")
        if not had_breaks:
            for s in sections:
                s.page = None
        title = next((s.heading for s in sections if s.heading), None)
        return ParsedDocument(
            self.kind,
            self.content_type,
            sections,
            pages=pages or (page if had_breaks else None),
            title=title,
        )


def _declared_pages(zf: zipfile.ZipFile) -> int | None:
    try:
        root = read_part(zf, "docProps/app.xml")
    except (KeyError, ET.ParseError, ParseFailure):
        return None
    for el in root.iter():
        if el.tag.endswith("}Pages") and el.text and el.text.strip().isdigit():
            return int(el.text.strip()) or None
    return None
