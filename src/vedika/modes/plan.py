"""Reading a research plan out of whatever the model wrote.

Models asked for JSON answer with JSON, JSON in a code fence, JSON after a sentence,
a numbered or bulleted list, or prose. `parse_plan` takes the first of these that
yields questions, cleans them (markup, quotes, duplicates, length) and falls back to
the question itself, so research always has something to search.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

QUESTION_CHARS = 300
_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.S)
_ITEM = re.compile(r"^\s*(?:\(?\d{1,2}[.):]|[-*•])\s+(.+?)\s*$")
_MARKUP = re.compile(r"[*_`#>]+")
_KEYS = ("sub_questions", "subquestions", "questions", "queries", "searches", "plan", "steps")
_ITEM_KEYS = ("question", "query", "q", "text", "sub_question", "search")


def parse_plan(text: str, question: str, limit: int) -> list[str]:
    """At most `limit` sub-questions from a model's plan; `[question]` when none."""
    found = _from_json(text) or _from_lines(text)
    out: list[str] = []
    seen: set[str] = set()
    for item in found:
        clean = _clean(item)
        key = clean.lower().rstrip("?. ")
        if len(clean) < 3 or key in seen:
            continue
        seen.add(key)
        out.append(clean)
        if len(out) == limit:
            break
    return out or [" ".join(question.split())[:QUESTION_CHARS]]


def _clean(item: str) -> str:
    text = _MARKUP.sub("", item)
    text = " ".join(text.split()).strip(" \"'“”‘’")
    return text[:QUESTION_CHARS]


def _candidates(text: str) -> list[str]:
    out = [m.group(1) for m in _FENCE.finditer(text)]
    for opener, closer in (("{", "}"), ("[", "]")):
        start, end = text.find(opener), text.rfind(closer)
        if 0 <= start < end:
            out.append(text[start : end + 1])
    out.append(text)
    return out


def _from_json(text: str) -> list[str]:
    for candidate in _candidates(text):
        try:
            value = orjson.loads(candidate.strip())
        except orjson.JSONDecodeError:
            continue
        items = _items(value)
        if items:
            return items
    return []


def _items(value: Any) -> list[str]:
    if isinstance(value, dict):
        for key in _KEYS:
            if isinstance(value.get(key), list):
                return _items(value[key])
        lists = [v for v in value.values() if isinstance(v, list)]
        return _items(lists[0]) if lists else []
    if not isinstance(value, list):
        return []
    out = []
    for item in value:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            text = next((item[k] for k in _ITEM_KEYS if isinstance(item.get(k), str)), None)
            if text:
                out.append(text)
    return out


def _from_lines(text: str) -> list[str]:
    lines = text.splitlines()
    items = [m.group(1) for line in lines if (m := _ITEM.match(line))]
    if items:
        return items
    return [line for line in lines if line.strip().endswith("?") and len(line.strip()) > 8]
