"""PDF through pypdf, one section per page, with pypdf's own resource limits lowered.

A stream that inflates past `max_stream_bytes` (a decompression bomb) stops pypdf
with LimitReachedError, which we report as a bomb; the child process's memory and
time caps catch what pypdf does not. External decoders (jbig2dec) are never run.

Before any text is extracted, the pages' decompressed content is measured against a
budget proportional to the file's size: text extraction costs time per content
operator, so an 8 KB file whose 16 pages share one stream of 500,000 `Tj`
operators (3.5 MB, 56 MB for the file) would otherwise hold a parse worker for
minutes. It is refused in milliseconds instead.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pypdf
from pypdf import PageObject
from pypdf.errors import LimitReachedError, PdfReadError, PyPdfError
from pypdf.generic import ArrayObject, IndirectObject, StreamObject

from vedika.sources.parsers.base import (
    ParsedDocument,
    ParseFailure,
    ParseLimits,
    Parser,
    Section,
    register,
    too_much_text,
)

logging.getLogger("pypdf").setLevel(logging.ERROR)


@contextlib.contextmanager
def _pypdf_limits(limits: ParseLimits) -> Iterator[None]:
    apply: Any = getattr(pypdf, "apply_configuration", None)
    if apply is None:  # an older pypdf: its built-in limits apply
        yield
        return
    cap = limits.max_stream_bytes
    with apply(
        maximum_declared_stream_length=cap,
        array_based_stream_maximum_output_length=cap,
        zlib_maximum_output_length=cap,
        lzw_maximum_output_length=cap,
        run_length_maximum_output_length=cap,
        jbig2_maximum_output_length=cap,
        brotli_maximum_output_length=cap,
        jbig2dec_binary=None,
    ):
        yield


def _bomb() -> ParseFailure:
    return ParseFailure(
        "bomb", "This PDF is a decompression bomb (a part inflates beyond the limit); refused."
    )


def content_budget(file_bytes: int, limits: ParseLimits) -> int:
    """How many decompressed content bytes a PDF of this size may have its pages draw."""
    scaled = max(limits.content_free_bytes, limits.max_content_ratio * file_bytes)
    return min(scaled, limits.max_unpacked_bytes)


def _content_streams(page: PageObject) -> Iterator[tuple[object, StreamObject]]:
    """The page's content streams, each with a key that is the same for every page
    sharing it (its object number), so it is decoded once but counted per page."""
    if "/Contents" not in page:
        return
    raw = page.raw_get("/Contents")
    target = raw.get_object() if isinstance(raw, IndirectObject) else raw
    items = list(target) if isinstance(target, ArrayObject) else [raw]
    for item in items:
        stream = item.get_object() if isinstance(item, IndirectObject) else item
        if isinstance(stream, StreamObject):
            key = (item.idnum, item.generation) if isinstance(item, IndirectObject) else id(item)
            yield key, stream


def check_content(reader: pypdf.PdfReader, file_bytes: int, limits: ParseLimits) -> None:
    """Refuse a PDF whose pages hold more content than its size allows, before any
    text extraction (decoding stops as soon as the budget is passed)."""
    budget = content_budget(file_bytes, limits)
    decoded: dict[object, int] = {}
    total = 0
    for page in reader.pages:
        for key, stream in _content_streams(page):
            if key not in decoded:
                decoded[key] = len(stream.get_data())
            total += decoded[key]
            if total > budget:
                raise ParseFailure(
                    "too_complex",
                    f"This PDF's pages hold more than {budget:,} bytes of drawing "
                    f"instructions, too many for a file of {file_bytes:,} bytes; it was refused.",
                )


@register
class Pdf(Parser):
    kind = "pdf"
    content_type = "application/pdf"
    extensions = (".pdf",)
    label = "PDF"

    def parse(self, path: Path, limits: ParseLimits) -> ParsedDocument:
        try:
            with _pypdf_limits(limits):
                return self._parse(path, limits)
        except LimitReachedError:
            raise _bomb() from None
        except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, AssertionError) as exc:
            raise ParseFailure(
                "unreadable", f"This PDF is damaged or unusual ({type(exc).__name__})."
            ) from None

    def _parse(self, path: Path, limits: ParseLimits) -> ParsedDocument:
        reader = pypdf.PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise ParseFailure("unreadable", "This PDF is protected by a password.")
        count = len(reader.pages)
        if count > limits.max_pages:
            raise ParseFailure(
                "too_complex", f"This PDF has {count:,} pages; the limit is {limits.max_pages:,}."
            )
        check_content(reader, path.stat().st_size, limits)
        sections: list[Section] = []
        chars = 0
        for number, page in enumerate(reader.pages, 1):
            text = (page.extract_text() or "").strip()
            chars += len(text)
            if chars > limits.max_chars:
                raise too_much_text(limits)
            if text:
                sections.append(Section(text, page=number))
        if not sections:
            raise ParseFailure(
                "no_text",
                "This PDF has no text layer (it may be a scan); Vedika cannot read images yet.",
            )
        title = None
        with contextlib.suppress(PyPdfError, ValueError, TypeError, KeyError):
            meta = reader.metadata
            title = str(meta.title).strip() if meta and meta.title else None
        return ParsedDocument(self.kind, self.content_type, sections, pages=count, title=title)
