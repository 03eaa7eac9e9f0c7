"""Chunking keeps pages and sections, overlaps, and never loses text; names are cleaned."""

from __future__ import annotations

import itertools

import pytest

from vedika.sources.chunking import chunk
from vedika.sources.library import clean_name
from vedika.sources.parsers.base import Section
from vedika.sources.ranking import BM25, best_window, rrf, terms


def test_passages_never_cross_pages_and_keep_them() -> None:
    sections = [Section("Page one text. " * 10, page=1), Section("Page two text.", page=2)]
    passages = chunk(sections, size=200, overlap=40)
    assert {p.page for p in passages} == {1, 2}
    assert all("two" not in p.text for p in passages if p.page == 1)
    assert [p.seq for p in passages] == list(range(len(passages)))


def test_long_text_is_split_with_overlap_and_nothing_lost() -> None:
    sentences = [f"Sentence number {i} says something about topic {i}." for i in range(60)]
    passages = chunk([Section(" ".join(sentences), heading="Facts")], size=300, overlap=80)
    assert len(passages) > 5 and all(len(p.text) <= 300 for p in passages)
    joined = " ".join(p.text for p in passages)
    assert all(s in joined for s in sentences)
    # each passage after the first starts with the end of the one before it
    for before, after in itertools.pairwise(passages):
        assert after.text.split(". ")[0].split("\n")[0] in before.text
    assert {p.section for p in passages} == {"Facts"}


def test_a_single_huge_word_is_cut() -> None:
    passages = chunk([Section("x" * 2500)], size=1000, overlap=100)
    assert sum(len(p.text) for p in passages) >= 2500
    assert all(len(p.text) <= 1000 for p in passages)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("../../etc/passwd", "passwd"),
        ("/absolute/path/report.pdf", "report.pdf"),
        ("C:\\Users\\me\\notes.txt", "notes.txt"),
        ("evil\x00name.pdf", "evilname.pdf"),
        ("invoice\u202egpj.pdf", "invoicegpj.pdf"),
        ("zero\u200bwidth.md", "zerowidth.md"),
        ("..", "file"),
        ("", "file"),
        ("<script>alert(1)</script>.html", "script>.html"),
    ],
)
def test_names_are_cleaned(raw: str, clean: str) -> None:
    assert clean_name(raw) == clean


def test_long_names_keep_their_extension() -> None:
    name = clean_name("a" * 500 + ".pdf")
    assert len(name) == 200 and name.endswith(".pdf")


def test_ranking_helpers() -> None:
    docs = ["the ferry crosses the lake", "kites fly at the festival", "copper kettles"]
    scores = BM25(docs).scores("When does the ferry cross?")
    assert scores.index(max(scores)) == 0
    assert (
        terms("Ferries crossing lakes")
        == terms("ferry crossed the lake")
        == [
            "ferry",
            "cross",
            "lak",
        ]
    )
    assert rrf([["a", "b", "c"], ["c", "a"]])[0] == "a"
    text = "Intro sentence here. The ferry leaves at nine. Unrelated closing words."
    assert best_window(text, "when does the ferry leave", 40).startswith("The ferry")
