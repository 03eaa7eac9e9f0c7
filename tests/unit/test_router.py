"""The `best` router picks by what the question looks like, and says why."""

from __future__ import annotations

import pytest

from vedika.models.catalogue import ModelInfo
from vedika.models.router import choose, classify

CODER = ModelInfo(
    id="coder",
    name="Coder",
    endpoint="e",
    upstream_id="coder",
    good_at={"code": 0.95, "general": 0.4},
    speed="medium",
    best_for=["code"],
)
WRITER = ModelInfo(
    id="writer",
    name="Writer",
    endpoint="e",
    upstream_id="writer",
    good_at={"creative": 0.9, "analysis": 0.9, "general": 0.7},
    speed="slow",
    best_for=["writing", "analysis"],
)
QUICK = ModelInfo(
    id="quick",
    name="Quick",
    endpoint="e",
    upstream_id="quick",
    good_at={"chat": 0.7, "general": 0.6},
    speed="fast",
)
ALL = [CODER, WRITER, QUICK]


@pytest.mark.parametrize(
    ("text", "category", "model"),
    [
        ("How do I fix this Python traceback: KeyError in my dict?", "code", "coder"),
        ("```js\nconst x = () => 1;\n```\nwhy is this undefined", "code", "coder"),
        ("Write a short poem about autumn leaves", "creative", "writer"),
        ("Compare the pros and cons of nuclear versus solar power", "analysis", "writer"),
        ("hey, how are you?", "chat", "quick"),
    ],
)
def test_categories_and_choices(text: str, category: str, model: str) -> None:
    choice = choose(text, ALL)
    assert choice.category == category
    assert choice.model.id == model
    assert 0 < choice.confidence <= 1
    assert choice.model.name in choice.reason


def test_query_type_from_the_client_wins() -> None:
    assert classify("hello", "technical")[0] == "code"
    assert choose("hello", ALL, "creative").model.id == "writer"


def test_single_model_says_so() -> None:
    choice = choose("anything at all", [QUICK])
    assert choice.model is QUICK and "only model" in choice.reason and choice.confidence == 1.0
