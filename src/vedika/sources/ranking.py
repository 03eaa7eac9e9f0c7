"""Words, BM25 over a handful of passages, and reciprocal-rank fusion.

The database ranks stored passages (FTS5's bm25, PostgreSQL's ts_rank); this module
ranks what never touches the database: fetched web pages, and the sentences the
offline answerer quotes.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from typing import TypeVar

K = TypeVar("K", bound=Hashable)

_WORD = re.compile(r"\w+", re.UNICODE)
_STOPWORDS = """a about above after again against all am an and any are as at be because been
before being below between both but by can could did do does doing down during each few for
from further had has have having he her here hers herself him himself his how i if in into is
it its itself just me more most my myself no nor not now of off on once only or other our ours
ourselves out over own same she should so some such than that the their theirs them themselves
then there these they this those through to too under until up very was we were what when
where which while who whom why will with would you your yours yourself yourselves tell please
explain describe give show list say says said according"""
STOPWORDS = frozenset(_STOPWORDS.split())


def stem(word: str) -> str:
    """A light English stemmer, the same on both sides of a match: plurals, -ing, -ed,
    and a final e (so lake/lakes, make/making, cross/crossed meet)."""
    w = word
    if len(w) <= 3 or not w.isalpha():
        return w
    if w.endswith("ies") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith(("sses", "ches", "shes", "xes", "zes")):
        w = w[:-2]
    elif w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    if w.endswith("ing") and len(w) >= 6:
        w = w[:-3]
    elif w.endswith("ed") and len(w) >= 5:
        w = w[:-2]
    if w.endswith("e") and len(w) >= 4:
        w = w[:-1]
    return w


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def terms(text: str) -> list[str]:
    """Content words of `text`, stemmed, stopwords dropped."""
    return [stem(w) for w in words(text) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]


def query_words(text: str, limit: int = 32) -> list[str]:
    """Distinct content words of a question, unstemmed (the index stems), at most `limit`."""
    seen: dict[str, None] = {}
    for w in words(text):
        if w not in STOPWORDS and (len(w) > 1 or w.isdigit()) and "_" not in w:
            seen.setdefault(w, None)
    return list(seen)[:limit]


class BM25:
    """Okapi BM25 over a small in-memory collection."""

    def __init__(self, documents: Sequence[str], k1: float = 1.2, b: float = 0.75) -> None:
        self.docs = [Counter(terms(d)) for d in documents]
        self.lengths = [sum(c.values()) for c in self.docs]
        self.avg = (sum(self.lengths) / len(self.lengths)) if self.lengths else 0.0
        self.k1, self.b = k1, b
        df: Counter[str] = Counter()
        for counts in self.docs:
            df.update(counts.keys())
        n = len(self.docs)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}

    def scores(self, query: str) -> list[float]:
        q = set(terms(query))
        out = []
        for counts, length in zip(self.docs, self.lengths, strict=True):
            score = 0.0
            norm = self.k1 * (1 - self.b + self.b * length / (self.avg or 1))
            for t in q:
                f = counts.get(t)
                if f:
                    score += self.idf[t] * f * (self.k1 + 1) / (f + norm)
            out.append(score)
        return out


def rrf(rankings: Iterable[Sequence[K]], k: int = 60) -> list[K]:
    """Reciprocal-rank fusion: the items of several rankings, best first."""
    score: dict[K, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking):
            score[item] = score.get(item, 0.0) + 1.0 / (k + rank + 1)
    return sorted(score, key=lambda item: -score[item])


_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[A-Z0-9])")


def sentences(text: str) -> list[str]:
    out: list[str] = []
    for block in re.split(r"\n\s*\n|\n(?=[-*#|]|\d+\.)", text):
        block = " ".join(block.split())
        if block:
            out.extend(s for s in _SENTENCE.split(block) if s)
    return out


def best_window(text: str, query: str, chars: int = 280) -> str:
    """The stretch of `text` (whole sentences, about `chars` long) that best matches
    `query`: a snippet for a citation card."""
    sents = sentences(text)
    if not sents:
        return ""
    q = set(terms(query))
    best, best_score = 0, -1.0
    for i, sent in enumerate(sents):
        hits = len(q.intersection(terms(sent)))
        if hits > best_score:
            best, best_score = i, hits
    out = sents[best]
    j = best + 1
    while j < len(sents) and len(out) + len(sents[j]) < chars:
        out += " " + sents[j]
        j += 1
    return shorten(out, chars)


def shorten(text: str, chars: int) -> str:
    text = " ".join(text.split())
    if len(text) <= chars:
        return text
    cut = text[:chars].rsplit(" ", 1)[0]
    return (cut or text[:chars]).rstrip(",;:") + "…"
