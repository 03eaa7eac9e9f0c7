"""Test documents made by the tests: PDF, DOCX, bombs (no binary fixtures in the repo)."""

from __future__ import annotations

import io
import textwrap
import zipfile
import zlib


def _pdf_string(text: str) -> str:
    return "(" + text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"


def _content(text: str) -> bytes:
    lines: list[str] = []
    for paragraph in text.split("\n"):
        lines.extend(textwrap.wrap(paragraph, 90) or [""])
    ops = ["BT", "/F1 10 Tf", "13 TL", "40 800 Td"]
    for line in lines[:60]:
        ops.append(f"{_pdf_string(line)} Tj T*")
    ops.append("ET")
    return "\n".join(ops).encode("latin-1", errors="replace")


def make_pdf(
    pages: list[str], *, title: str | None = None, streams: list[bytes] | None = None
) -> bytes:
    """A real PDF with one text page per item (Helvetica, WinAnsi). `streams` replaces
    the page contents with raw, already-encoded stream objects (for bombs)."""
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    catalog = add(b"")  # filled below
    pages_obj = add(b"")
    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    kids = []
    bodies = streams if streams is not None else [None] * len(pages)  # type: ignore[list-item]
    for i, raw in enumerate(bodies):
        if raw is None:
            data = _content(pages[i])
            stream = add(b"<< /Length %d >>\nstream\n" % len(data) + data + b"\nendstream")
        else:
            stream = add(raw)
        page = add(
            b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 595 842] "
            b"/Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>"
            % (pages_obj, font, stream)
        )
        kids.append(page)
    objects[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R >>" % pages_obj
    objects[pages_obj - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids),
        len(kids),
    )
    info = add(b"<< /Title %s >>" % _pdf_string(title).encode("latin-1")) if title else None
    return serialize_pdf(objects, root=catalog, info=info)


def serialize_pdf(objects: list[bytes], *, root: int, info: int | None = None) -> bytes:
    """The PDF file of `objects` (numbered from 1): header, bodies, xref, trailer."""
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % n + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    trailer = b"<< /Size %d /Root %d 0 R" % (len(objects) + 1, root)
    if info:
        trailer += b" /Info %d 0 R" % info
    out.write(b"trailer\n" + trailer + b" >>\nstartxref\n%d\n%%%%EOF\n" % xref)
    return out.getvalue()


def deflate_bomb(size: int) -> bytes:
    """zlib data that inflates to `size` bytes of spaces (about size/1000 compressed)."""
    comp = zlib.compressobj(9)
    block = b" " * 1_000_000
    parts = [comp.compress(block) for _ in range(size // len(block))]
    parts.append(comp.flush())
    return b"".join(parts)


def make_bomb_pdf(size: int = 200_000_000) -> bytes:
    data = deflate_bomb(size)
    stream = b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(data) + data + b"\nendstream"
    return make_pdf(["x"], streams=[stream])


def make_docx(paragraphs: list[tuple[str, str]]) -> bytes:
    """A DOCX written by python-docx: [(style, text)], style 'Heading 1', 'Normal', or
    'PAGE' for a page break."""
    import docx

    document = docx.Document()
    for style, text in paragraphs:
        if style == "PAGE":
            document.add_page_break()
        elif style.startswith("Heading"):
            document.add_heading(text, level=int(style.split()[-1]))
        else:
            document.add_paragraph(text)
    buf = io.BytesIO()
    document.save(buf)
    return buf.getvalue()


def make_zip_bomb_docx(size: int = 2_000_000_000) -> bytes:
    """A DOCX whose word/document.xml claims to inflate to `size` bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        with zf.open("word/document.xml", "w", force_zip64=True) as fh:
            block = b"<w:p/>" * 200_000
            written = 0
            while written < size:
                fh.write(block)
                written += len(block)
    return buf.getvalue()
