"""CSV (and TSV): rows become `column: value` lines, in sections of a few rows, so a
passage answers "what is X's Y" with the header next to the value."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from vedika.sources.parsers.base import (
    ParsedDocument,
    ParseFailure,
    ParseLimits,
    Parser,
    Section,
    register,
)
from vedika.sources.parsers.text import read_text

ROWS_PER_SECTION = 20
MAX_FIELD = 100_000


@register
class Csv(Parser):
    kind = "csv"
    content_type = "text/csv"
    extensions = (".csv", ".tsv")
    label = "CSV"

    def parse(self, path: Path, limits: ParseLimits) -> ParsedDocument:
        text = read_text(path, limits)
        try:
            dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(
                text[:16384], delimiters=",\t;|"
            )
        except csv.Error:
            dialect = csv.excel
        csv.field_size_limit(MAX_FIELD)
        try:
            rows = [r for r in csv.reader(io.StringIO(text), dialect) if any(c.strip() for c in r)]
        except csv.Error as exc:
            raise ParseFailure("unreadable", f"This CSV file is malformed ({exc}).") from None
        if not rows:
            raise ParseFailure("empty", "This CSV file has no rows.")
        header, body = [c.strip() for c in rows[0]], rows[1:] or [rows[0]]
        sections = []
        for start in range(0, len(body), ROWS_PER_SECTION):
            lines = []
            for row in body[start : start + ROWS_PER_SECTION]:
                cells = [
                    f"{header[i] if i < len(header) and header[i] else f'column {i + 1}'}: "
                    f"{value.strip()}"
                    for i, value in enumerate(row)
                    if value.strip()
                ]
                lines.append("; ".join(cells))
            end = min(start + ROWS_PER_SECTION, len(body))
            sections.append(Section("\n".join(lines), heading=f"rows {start + 1}-{end}"))
        return ParsedDocument(self.kind, self.content_type, sections)
