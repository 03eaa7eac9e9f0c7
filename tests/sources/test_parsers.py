"""Parsers: the type by content, each format read with pages/sections, hostile files refused."""

from __future__ import annotations

import io
import time
import zipfile
import zlib
from pathlib import Path

import pytest

from tests.sources import helpers
from tests.sources.corpus import RAIL_PAGES
from tests.support.documents import (
    make_bomb_pdf,
    make_docx,
    make_pdf,
    make_zip_bomb_docx,
    serialize_pdf,
)
from vedika.sources.isolation import Isolation, run_isolated
from vedika.sources.library import failure_error
from vedika.sources.parsers import ParseFailure, ParseLimits, detect, parse_path

LIMITS = ParseLimits()


def write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def read(path: Path, name: str = ""):
    kind = detect(path, name or path.name)
    return kind, parse_path(path, kind, LIMITS)


def test_pdf_pages_and_title(tmp_path: Path) -> None:
    pdf = make_pdf(
        ["Alpha page about tides.", "Beta page about (brackets) and \\ slashes."], title="T"
    )
    kind, doc = read(write(tmp_path, "a.pdf", pdf))
    assert kind == "pdf" and doc.pages == 2 and doc.title == "T"
    assert [s.page for s in doc.sections] == [1, 2]
    assert "(brackets)" in doc.sections[1].text


def test_docx_headings_and_page_breaks(tmp_path: Path) -> None:
    data = make_docx(
        [
            ("Heading 1", "Introduction"),
            ("Normal", "The first part."),
            ("PAGE", ""),
            ("Heading 2", "Prices"),
            ("Normal", "A ticket costs 12 euros."),
        ]
    )
    kind, doc = read(write(tmp_path, "report.docx", data))
    assert kind == "docx"
    assert [(s.heading, s.page) for s in doc.sections] == [("Introduction", 1), ("Prices", 2)]
    assert "12 euros" in doc.sections[1].text


def test_markdown_sections_ignore_fenced_hashes(tmp_path: Path) -> None:
    md = "# Guide\n\nIntro text.\n\n## Setup\n\n```sh\n# not a heading\n```\n\nRun it.\n"
    kind, doc = read(write(tmp_path, "guide.md", md))
    assert kind == "markdown"
    assert [s.heading for s in doc.sections] == ["Guide", "Setup"]
    assert "# not a heading" in doc.sections[1].text


def test_plain_text_and_form_feed_pages(tmp_path: Path) -> None:
    kind, doc = read(write(tmp_path, "notes.txt", "first page words\fsecond page words"))
    assert kind == "text" and doc.pages == 2
    assert [s.page for s in doc.sections] == [1, 2]


def test_html_main_text_only(tmp_path: Path) -> None:
    html = (
        "<!doctype html><html><head><title>Title</title></head><body>"
        "<nav>Home Shop Login</nav><article><h1>Tides</h1><p>The spring tide in Orsk harbour "
        "rises four metres above the neap tide, twice a month.</p></article>"
        "<footer>Copyright cookie banner</footer></body></html>"
    )
    kind, doc = read(write(tmp_path, "page.html", html))
    text = "\n".join(s.text for s in doc.sections)
    assert kind == "html" and "spring tide" in text
    assert "cookie" not in text.lower()


def test_csv_rows_keep_their_header(tmp_path: Path) -> None:
    csv = "city,population,river\nOrsk,41000,Vell\nDanmere,12500,Ash\n"
    kind, doc = read(write(tmp_path, "cities.csv", csv))
    assert kind == "csv"
    assert "city: Danmere; population: 12500; river: Ash" in doc.sections[0].text
    assert doc.sections[0].heading == "rows 1-2"


def test_type_is_decided_by_content_not_name(tmp_path: Path) -> None:
    html = "<html><body><p>I am really a web page about herons and their nests.</p></body></html>"
    assert detect(write(tmp_path, "report.pdf", html), "report.pdf") == "html"
    assert detect(write(tmp_path, "x.txt", make_pdf(["pdf inside"])), "x.txt") == "pdf"
    assert detect(write(tmp_path, "y.csv", "# Title\n\nSome *markdown* text\n- a\n- b\n")) in (
        "markdown",
        "text",
    )


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty"),
        (b"   \n\n  ", "empty"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "unsupported"),
        (b"\x7fELF\x02\x01\x01" + b"\x00" * 100, "unsupported"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "unsupported"),
        (b"MZ\x90\x00\x03" + b"\x00" * 100, "unsupported"),
        (b"some\x00binary\x00data" * 50, "unsupported"),
        (b'<?xml version="1.0"?><svg onload="alert(1)"></svg>', "unsupported"),
    ],
)
def test_refused_before_parsing(tmp_path: Path, data: bytes, code: str) -> None:
    with pytest.raises(ParseFailure) as err:
        detect(write(tmp_path, "f.pdf", data), "f.pdf")
    assert err.value.code == code and err.value.message.endswith(".")


def test_zip_that_is_not_a_docx(tmp_path: Path) -> None:
    path = tmp_path / "a.docx"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("hello.txt", "hi")
    with pytest.raises(ParseFailure, match="ZIP archive"):
        detect(path, "a.docx")


def test_decompression_bomb_pdf_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "bomb.pdf", make_bomb_pdf())
    assert detect(path) == "pdf"
    with pytest.raises(ParseFailure) as err:
        parse_path(path, "pdf", LIMITS)
    assert err.value.code == "bomb"


def test_zip_bomb_docx_is_refused_before_inflating(tmp_path: Path) -> None:
    path = write(tmp_path, "bomb.docx", make_zip_bomb_docx(60_000_000))
    assert detect(path) == "docx"
    with pytest.raises(ParseFailure) as err:
        parse_path(path, "docx", LIMITS)
    assert err.value.code == "bomb"
    small_cap = ParseLimits(max_unpacked_bytes=10_000_000, max_ratio=10**9)
    with pytest.raises(ParseFailure, match="unpacks to more than"):
        parse_path(path, "docx", small_cap)


def flate_pdf(contents: list[bytes], pages: int) -> bytes:
    """A PDF of `pages` pages whose FlateDecode content streams are `contents`; page i
    draws contents[i % len(contents)], so fewer streams than pages share them."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"",  # the page tree, below
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    streams = []
    for content in contents:
        data = zlib.compress(content, 9)
        objects.append(b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(data) + data)
        objects[-1] += b"\nendstream"
        streams.append(len(objects))
    kids = []
    for i in range(pages):
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>"
            % streams[i % len(streams)]
        )
        kids.append(b"%d 0 R" % len(objects))
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(kids), pages)
    return serialize_pdf(objects, root=1)


def text_ops(text: str) -> bytes:
    return b"BT /F1 10 Tf 40 800 Td (" + text.encode("latin-1") + b") Tj ET"


def make_tj_flood_pdf(pages: int = 16, ops: int = 500_000) -> bytes:
    """Finding 3 of issue 12: about 8 KB; `pages` pages share one content stream of
    `ops` `(x) Tj` operators (3.5 MB inflated), which took pypdf ~7 s a page to read."""
    return flate_pdf([b"BT /F1 10 Tf 40 800 Td " + b"(x) Tj " * ops + b"ET"], pages)


def test_pdf_sharing_a_huge_content_stream_is_refused_fast(tmp_path: Path) -> None:
    data = make_tj_flood_pdf()
    assert len(data) < 10_000
    path = write(tmp_path, "flood.pdf", data)
    assert detect(path) == "pdf"
    started = time.monotonic()
    with pytest.raises(ParseFailure) as err:
        parse_path(path, "pdf", LIMITS)
    assert time.monotonic() - started < 2
    assert err.value.code == "too_complex" and "drawing instructions" in err.value.message
    error = failure_error("flood.pdf", err.value)
    assert (error.status, error.code) == (413, "file_too_complex")


def test_shared_stream_counts_once_per_page(tmp_path: Path) -> None:
    """One 0.35 MB stream is under the 2 MB a small file may draw; on 6 pages it is not."""
    content = b"BT /F1 10 Tf 40 800 Td " + b"(x) Tj " * 50_000 + b"ET"
    assert parse_path(write(tmp_path, "one.pdf", flate_pdf([content], 1)), "pdf", LIMITS).pages
    with pytest.raises(ParseFailure) as err:
        parse_path(write(tmp_path, "six.pdf", flate_pdf([content], 6)), "pdf", LIMITS)
    assert err.value.code == "too_complex"


def test_normal_compressed_multipage_pdf_still_parses(tmp_path: Path) -> None:
    pages = [text_ops(page[:90]) for page in RAIL_PAGES] * 5  # 40 pages, own streams
    doc = parse_path(write(tmp_path, "rail.pdf", flate_pdf(pages, 40)), "pdf", LIMITS)
    assert doc.pages == 40 and len(doc.sections) == 40
    assert doc.sections[1].text.startswith("Bicycles.") and doc.sections[39].page == 40
    # a header stream shared by every page is normal, and counted per page within budget
    shared = parse_path(write(tmp_path, "s.pdf", flate_pdf([text_ops("Hi")], 12)), "pdf", LIMITS)
    assert [s.text for s in shared.sections] == ["Hi"] * 12


W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def docx_with(document_xml: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("word/document.xml", document_xml)
    return buf.getvalue()


def document_xml(body_text: str, *, prolog: str = "", encoding: str = "utf-8") -> bytes:
    xml = (
        f'<?xml version="1.0" encoding="{encoding}"?>{prolog}'
        f'<w:document xmlns:w="{W_NS}"><w:body><w:p><w:r><w:t>{body_text}</w:t></w:r></w:p>'
        "</w:body></w:document>"
    )
    return xml.encode(encoding)


ENTITY_DTD = '<!DOCTYPE w:document [<!ENTITY secret "EXPANDED-ENTITY">]>'


@pytest.mark.parametrize(
    "xml",
    [
        # a 5 KB comment pushed the DOCTYPE past the 4 KB that used to be searched
        document_xml("&secret;", prolog="<!--" + "c" * 5000 + "-->" + ENTITY_DTD),
        # UTF-16 hid "<!DOCTYPE" from a byte search
        document_xml("&secret;", prolog=ENTITY_DTD, encoding="utf-16"),
        # an external entity, and a DTD without entities at all
        document_xml("x", prolog='<!DOCTYPE w:document SYSTEM "file:///etc/passwd">'),
    ],
    ids=["long-comment", "utf-16", "external"],
)
def test_docx_entities_are_refused_wherever_they_hide(tmp_path: Path, xml: bytes) -> None:
    path = write(tmp_path, "entity.docx", docx_with(xml))
    assert detect(path) == "docx"
    with pytest.raises(ParseFailure) as err:
        parse_path(path, "docx", LIMITS)
    assert err.value.code == "unreadable"
    assert err.value.message == "This DOCX file contains XML entities; it was refused."


def test_docx_in_utf16_without_a_dtd_is_read(tmp_path: Path) -> None:
    for encoding in ("utf-8", "utf-16"):
        data = docx_with(document_xml("Ferries leave at 6 &amp; 9.", encoding=encoding))
        doc = parse_path(write(tmp_path, f"{encoding}.docx", data), "docx", LIMITS)
        assert [s.text for s in doc.sections] == ["Ferries leave at 6 & 9."]


def test_docx_with_entities_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "lol.docx"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(
            "word/document.xml",
            '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]><w:document/>',
        )
    with pytest.raises(ParseFailure) as err:
        parse_path(path, "docx", LIMITS)
    assert err.value.code == "unreadable"


def test_pdf_without_text_layer(tmp_path: Path) -> None:
    path = write(tmp_path, "scan.pdf", make_pdf([""]))
    with pytest.raises(ParseFailure) as err:
        parse_path(path, "pdf", LIMITS)
    assert err.value.code == "no_text"


def test_damaged_pdf(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage")
    with pytest.raises(ParseFailure) as err:
        parse_path(path, "pdf", LIMITS)
    assert err.value.code == "unreadable"


def test_isolated_parse_returns_the_document(tmp_path: Path) -> None:
    path = write(tmp_path, "a.pdf", make_pdf(["isolated page"]))
    doc = run_isolated(parse_path, (path, "pdf", LIMITS), timeout=30, memory_bytes=512 << 20)
    assert doc.sections[0].text == "isolated page"


def test_isolation_caps_memory_time_and_survives_crashes() -> None:
    with pytest.raises(ParseFailure) as err:
        run_isolated(helpers.hog_memory, (4 << 30,), timeout=30, memory_bytes=256 << 20)
    assert err.value.code == "memory"
    assert run_isolated(helpers.hog_memory, (1 << 20,), timeout=30, memory_bytes=256 << 20)
    with pytest.raises(ParseFailure) as err:
        run_isolated(helpers.sleep_for, (120,), timeout=1, memory_bytes=256 << 20)
    assert err.value.code == "timeout"
    with pytest.raises(ParseFailure) as err:
        run_isolated(helpers.crash, (), timeout=30, memory_bytes=256 << 20)
    assert err.value.code == "unreadable"


async def test_isolation_runs_off_the_event_loop(tmp_path: Path) -> None:
    iso = Isolation(workers=2, timeout=30, memory_bytes=512 << 20)
    path = write(tmp_path, "a.pdf", make_pdf(["one"]))
    docs = [await iso.run(parse_path, path, "pdf", LIMITS) for _ in range(2)]
    assert all(d.sections[0].text == "one" for d in docs)
    with pytest.raises(ParseFailure) as err:
        await iso.run(parse_path, write(tmp_path, "b.pdf", make_bomb_pdf()), "pdf", LIMITS)
    assert err.value.code == "bomb"
