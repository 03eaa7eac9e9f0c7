"""File parsers: the type decided by content, one parser per type, behind a registry.

Importing this package registers the built-in parsers (like model providers do).
"""

from pathlib import Path

from vedika.sources.parsers import docx, html, pdf, table, text  # noqa: F401
from vedika.sources.parsers.base import (
    ParsedDocument,
    ParseFailure,
    ParseLimits,
    Parser,
    Section,
    get_parser,
    parsers,
    register,
)
from vedika.sources.parsers.detect import detect


def parse_path(path: Path, kind: str, limits: ParseLimits) -> ParsedDocument:
    """Parse a stored file of a known kind (blocking: run it through `isolation`)."""
    return get_parser(kind).parse(path, limits)


__all__ = [
    "ParseFailure",
    "ParseLimits",
    "ParsedDocument",
    "Parser",
    "Section",
    "detect",
    "get_parser",
    "parse_path",
    "parsers",
    "register",
]
