"""The parser seam: one small method, a registry of kinds, and the failures a person sees.

A parser turns a stored file into sections of text that remember their page (PDF)
or heading (DOCX, Markdown, HTML, CSV row ranges). Parsers run in a child process
under time and memory caps (see `isolation`), so they may be plain blocking code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar


class ParseFailure(Exception):
    """A file Vedika will not or cannot read. `code` is one of: unsupported, empty,
    no_text, bomb, too_complex, unreadable, timeout, memory."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __reduce__(self) -> tuple[type[ParseFailure], tuple[str, str]]:
        return (ParseFailure, (self.code, self.message))


@dataclass(slots=True)
class Section:
    text: str
    page: int | None = None  # 1-based, when the format has pages
    heading: str | None = None  # the section's title, or a row range for CSV


@dataclass(slots=True)
class ParsedDocument:
    kind: str
    content_type: str
    sections: list[Section] = field(default_factory=list)
    pages: int | None = None
    title: str | None = None

    @property
    def chars(self) -> int:
        return sum(len(s.text) for s in self.sections)


@dataclass(frozen=True, slots=True)
class ParseLimits:
    max_chars: int = 10_000_000  # extracted text
    max_pages: int = 5_000
    max_unpacked_bytes: int = 200_000_000  # what a compressed part may inflate to
    max_ratio: int = 100  # inflated / compressed, beyond a few megabytes
    max_stream_bytes: int = 50_000_000  # one decompressed PDF stream
    # Decompressed PDF page content a file may hold: max(free, ratio x file size), a
    # stream shared by several pages counted once per page. pypdf's text extraction
    # costs up to ~2 s per megabyte of content (a flood of `(x) Tj`), so this bounds
    # the work by what was sent; normal PDFs hold a few times their size.
    content_free_bytes: int = 2_000_000
    max_content_ratio: int = 50


class Parser:
    """Reads one kind of file. Subclasses set the class attributes and `parse`."""

    kind: ClassVar[str]
    content_type: ClassVar[str]
    extensions: ClassVar[tuple[str, ...]] = ()
    label: ClassVar[str] = ""

    def parse(self, path: Path, limits: ParseLimits) -> ParsedDocument:
        raise NotImplementedError


_PARSERS: dict[str, Parser] = {}


def register(cls: type[Parser]) -> type[Parser]:
    """Class decorator: make a parser available by its `kind`."""
    _PARSERS[cls.kind] = cls()
    return cls


def get_parser(kind: str) -> Parser:
    try:
        return _PARSERS[kind]
    except KeyError:
        raise ParseFailure("unsupported", f"Vedika has no reader for {kind} files.") from None


def parsers() -> dict[str, Parser]:
    return dict(_PARSERS)


def too_much_text(limits: ParseLimits) -> ParseFailure:
    return ParseFailure(
        "too_complex", f"This file holds more than {limits.max_chars:,} characters of text."
    )
