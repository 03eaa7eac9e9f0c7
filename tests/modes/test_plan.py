"""Research plans in every shape models write them, and the fallback."""

from __future__ import annotations

import pytest

from vedika.modes.plan import parse_plan

QUESTION = "How do heat pumps work in cold climates?"


@pytest.mark.parametrize(
    "text",
    [
        '{"sub_questions": ["How do heat pumps work?", "Do they work below -20 C?"]}',
        'Sure! Here is the plan:\n```json\n{"questions": ["How do heat pumps work?", '
        '"Do they work below -20 C?"]}\n```\nGood luck.',
        '["How do heat pumps work?", "Do they work below -20 C?"]',
        '{"plan": [{"query": "How do heat pumps work?"}, {"query": "Do they work below -20 C?"}]}',
        "Plan:\n1. **How do heat pumps work?**\n2) Do they work below -20 C?\n",
        "- How do heat pumps work?\n* Do they work below -20 C?",
        "I would ask:\nHow do heat pumps work?\nDo they work below -20 C?",
    ],
)
def test_plans_in_any_shape(text: str) -> None:
    assert parse_plan(text, QUESTION, 4) == ["How do heat pumps work?", "Do they work below -20 C?"]


def test_limit_duplicates_and_fallback() -> None:
    many = "\n".join(f"{i}. Question number {i}?" for i in range(1, 10))
    assert len(parse_plan(many, QUESTION, 3)) == 3
    assert parse_plan('["Same thing?", "same thing", "x"]', QUESTION, 4) == ["Same thing?"]
    assert parse_plan("I'd just look it up.", QUESTION, 4) == [QUESTION]
    assert parse_plan("", "  spaced   out \n question ", 4) == ["spaced out question"]
    assert parse_plan('{"sub_questions": []}', QUESTION, 4) == [QUESTION]
    assert len(parse_plan(f'["{"word " * 200}"]', QUESTION, 4)[0]) == 300
