"""What a file is, decided by its bytes, never by its name.

Binary formats by their magic numbers (a `.pdf` that holds HTML is HTML). Among the
text formats the name may break a tie (Markdown and plain text read alike), but it
never turns text into a binary format or the reverse.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import zipfile
from pathlib import Path

from vedika.sources.parsers.base import ParseFailure

HEAD_BYTES = 64 * 1024

_BINARY = (
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"RIFF", "a media file"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"BZh", "a bzip2 archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"\x7fELF", "a program"),
    (b"MZ", "a Windows program"),
    (b"OggS", "an audio file"),
    (b"ID3", "an audio file"),
    (b"fLaC", "an audio file"),
    (b"%!PS", "a PostScript file"),
    (b"\xd0\xcf\x11\xe0", "an old Office file (.doc/.xls/.ppt); save it as DOCX or PDF"),
    (b"{\\rtf", "an RTF file; save it as DOCX or PDF"),
)
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_HTML_START = re.compile(r"^(<!--.*?-->\s*)*<(!doctype\s+html|html|head|body|meta|title)\b", re.S)
_HTML_TAGS = re.compile(r"<(html|head|body|article|main|div|p|h[1-6]|table|title|span)\b[^>]*>")
_MD_SIGNS = re.compile(
    r"^(#{1,6} \S|```|~~~|[-*+] \S|\d+\. \S|> \S|\|.*\|\s*$)|\[[^\]]+\]\([^)]+\)|\*\*\S", re.M
)


def unsupported(what: str) -> ParseFailure:
    return ParseFailure(
        "unsupported",
        f"This file is {what}. Vedika reads PDF, DOCX, plain text, Markdown, HTML and CSV.",
    )


def decode_text(data: bytes, *, partial: bool = False) -> str:
    """Text from bytes: a BOM's encoding, else UTF-8, else Windows-1252 for text that
    has no NUL bytes (old exports). Binary data raises `unsupported`."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    if b"\x00" in data:
        raise unsupported("binary data")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if partial and exc.start >= len(data) - 3:  # a character cut by the head's end
            return data[: exc.start].decode("utf-8")
    text = data.decode("cp1252", errors="replace")
    controls = sum(1 for c in text[:4096] if ord(c) < 32 and c not in "\t\n\r\f")
    if controls > len(text[:4096]) // 50:
        raise unsupported("binary data")
    return text


def detect(path: Path, name: str = "") -> str:
    """The kind of the stored file at `path`: pdf, docx, html, csv, markdown or text."""
    with path.open("rb") as fh:
        head = fh.read(HEAD_BYTES)
    if not head.strip():
        raise ParseFailure("empty", "This file is empty.")
    if b"%PDF-" in head[:1024]:
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        return _zip_kind(path)
    for magic, what in _BINARY:
        if head.startswith(magic):
            raise unsupported(what)
    text = decode_text(head, partial=len(head) == HEAD_BYTES)
    return text_kind(text, name)


def _zip_kind(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        raise unsupported("a damaged ZIP archive") from None
    if "word/document.xml" in names:
        return "docx"
    if "xl/workbook.xml" in names or "ppt/presentation.xml" in names:
        raise unsupported("an Excel or PowerPoint file; save it as PDF or CSV")
    raise unsupported("a ZIP archive")


def text_kind(text: str, name: str = "") -> str:
    start = text.lstrip("\ufeff \t\r\n")
    head = start[:4096].lower()
    if head.startswith(("<?xml", "<svg")):
        if "<html" in head:
            return "html"
        raise unsupported("XML or SVG")
    if _HTML_START.match(head) or (head.startswith("<") and len(_HTML_TAGS.findall(head)) >= 2):
        return "html"
    suffix = name.lower().rsplit(".", 1)[-1] if "." in name else ""
    if _looks_like_csv(start, strong=suffix not in ("csv", "tsv")):
        return "csv"
    if suffix in ("md", "markdown", "mdown") or len(_MD_SIGNS.findall(start[:8192])) >= 3:
        return "markdown"
    return "text"


def _looks_like_csv(text: str, *, strong: bool) -> bool:
    lines = [line for line in text[:16384].splitlines() if line.strip()][:20]
    if len(lines) < 2 or lines[0].lstrip().startswith(("|", "#")):
        return False
    if len(text[:16384].splitlines()) > len(lines) * 2:  # prose has blank lines between
        return False
    sample = "\n".join(lines)
    for delimiter in (",", "\t", ";", "|"):
        try:
            rows = list(csv.reader(io.StringIO(sample), delimiter=delimiter))
        except csv.Error:
            continue
        widths = {len(row) for row in rows[:-1]}  # the last line may be cut
        if len(widths) == 1 and widths.pop() >= (3 if strong else 2):
            avg = sum(len(c) for row in rows for c in row) / max(1, sum(len(r) for r in rows))
            if avg < 60:
                return True
    return False
