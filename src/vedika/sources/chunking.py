"""Split parsed sections into overlapping passages that keep their page or section.

A passage never crosses a section (so its page number is exact). Inside a section,
paragraphs are packed up to `size` characters; a paragraph longer than that is cut
at sentence ends, and a sentence longer than that at spaces. Each passage starts
with the last sentences of the one before it (up to `overlap` characters), so an
answer that straddles a boundary is whole in one of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from vedika.sources.parsers.base import Section

_PARAGRAPHS = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?。])\s+")


@dataclass(slots=True)
class Passage:
    seq: int
    text: str
    page: int | None = None
    section: str | None = None


def _units(text: str, size: int) -> list[str]:
    """Paragraphs, or sentences of long paragraphs, or word runs of long sentences."""
    out: list[str] = []
    for para in _PARAGRAPHS.split(text):
        para = "\n".join(" ".join(line.split()) for line in para.strip().split("\n"))
        if not para:
            continue
        if len(para) <= size:
            out.append(para)
            continue
        for sentence in _SENTENCE_END.split(para):
            while len(sentence) > size:
                cut = sentence.rfind(" ", 0, size)
                cut = cut if cut > size // 2 else size
                out.append(sentence[:cut].strip())
                sentence = sentence[cut:].strip()
            if sentence:
                out.append(sentence)
    return out


def _tail(units: list[str], overlap: int) -> list[str]:
    """The last units of a passage, at most `overlap` characters (sentence-aligned)."""
    kept: list[str] = []
    used = 0
    for unit in reversed(units):
        pieces = _SENTENCE_END.split(unit)
        for piece in reversed(pieces):
            if used + len(piece) > overlap:
                return list(reversed(kept))
            kept.append(piece)
            used += len(piece) + 1
    return list(reversed(kept))


def chunk(sections: Iterable[Section], *, size: int = 1000, overlap: int = 150) -> list[Passage]:
    passages: list[Passage] = []
    for section in sections:
        units = _units(section.text, size)
        current: list[str] = []
        length = 0
        fresh = 0  # units in `current` that no earlier passage holds
        for unit in units:
            if current and length + len(unit) + 1 > size and fresh:
                passages.append(_passage(len(passages), current, section))
                current = _tail(current, overlap)
                length = sum(len(u) + 1 for u in current)
                fresh = 0
                while current and length + len(unit) + 1 > size:  # keep room for the new unit
                    length -= len(current.pop(0)) + 1
            current.append(unit)
            length += len(unit) + 1
            fresh += 1
        if current and fresh:
            passages.append(_passage(len(passages), current, section))
    return passages


def _passage(seq: int, units: list[str], section: Section) -> Passage:
    return Passage(seq=seq, text="\n".join(units), page=section.page, section=section.heading)
