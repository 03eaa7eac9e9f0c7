"""The `best` router: read what the question looks like, pick the model good at it.

Classification is a handful of cheap, explainable cues (no model call on the hot
path). Each cue votes for a category; the strongest category and its margin give
the confidence, and the model with the highest `good_at` score for it wins
(ties go to the faster, cheaper model). The reason is a sentence a person can read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vedika.models.catalogue import ModelInfo

_CUES: dict[str, list[tuple[re.Pattern[str], float, str]]] = {
    "code": [
        (re.compile(r"```|\bdef |\bclass |\bfunction\b|=>|;\s*$|\{\s*$", re.M), 2.0, "code"),
        (
            re.compile(
                r"\b(python|javascript|typescript|rust|golang|java|c\+\+|sql|regex|bash|"
                r"api|compile|bug|debug|stack ?trace|traceback|exception|error:|refactor|"
                r"algorithm|unit test|dockerfile|kubernetes)\b",
                re.I,
            ),
            1.5,
            "programming terms",
        ),
    ],
    "analysis": [
        (
            re.compile(
                r"\b(compare|comparison|versus|vs\.?|analy[sz]e|analysis|evaluate|"
                r"pros and cons|trade-?offs?|why does|why do|explain why|implications|"
                r"assess|calculate|estimate|statistics|data)\b",
                re.I,
            ),
            1.5,
            "asks for analysis or comparison",
        ),
    ],
    "creative": [
        (
            re.compile(
                r"\b(write|compose|draft)\b.{0,40}\b(poem|story|song|lyrics|haiku|essay|"
                r"script|tweet|slogan|joke)\b|\b(poem|story|haiku|imagine|fictional|"
                r"brainstorm|creative)\b",
                re.I,
            ),
            2.0,
            "a creative writing request",
        ),
    ],
}

_QUERY_TYPE = {
    "technical": "code",
    "analytical": "analysis",
    "creative": "creative",
    "general": "general",
}
_LABEL = {
    "code": "a coding question",
    "analysis": "an analytical question",
    "creative": "a creative request",
    "chat": "a short conversational message",
    "general": "a general question",
}
_SPEED = {"fast": 0, "medium": 1, "slow": 2}


@dataclass(frozen=True, slots=True)
class Choice:
    model: ModelInfo
    reason: str
    confidence: float
    category: str


def classify(text: str, query_type: str | None = None) -> tuple[str, float, str]:
    """(category, confidence 0..1, the cue that decided it)."""
    if query_type and query_type in _QUERY_TYPE:
        return _QUERY_TYPE[query_type], 0.95, f"the client marked it {query_type}"
    scores: dict[str, float] = {}
    cues: dict[str, str] = {}
    for category, patterns in _CUES.items():
        for pattern, weight, cue in patterns:
            if pattern.search(text):
                scores[category] = scores.get(category, 0.0) + weight
                cues.setdefault(category, cue)
    if not scores:
        words = len(text.split())
        if words <= 8:
            return "chat", 0.7, "it is short"
        return "general", 0.55, "no special cues"
    ranked = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
    best, top = ranked[0]
    second = ranked[1][1] if len(ranked) > 1 else 0.0
    confidence = min(0.95, 0.55 + 0.12 * top + 0.1 * (top - second))
    return best, round(confidence, 2), cues[best]


def choose(text: str, models: list[ModelInfo], query_type: str | None = None) -> Choice:
    """Pick one of `models` (all available) for this question, with a reason."""
    category, confidence, cue = classify(text, query_type)

    def score(m: ModelInfo) -> tuple[float, int, int]:
        fit = m.good_at.get(category, m.good_at.get("general", 0.5))
        # Short chat favours speed; otherwise fit decides, then speed, then cost.
        speed_rank = _SPEED.get(m.speed, 1)
        if category == "chat":
            fit += 0.2 * (2 - speed_rank)
        return (fit, -speed_rank, -m.coins_per_message)

    model = max(models, key=score)
    if len(models) == 1:
        reason = f"{model.name} is the only model available right now."
        confidence = 1.0
    else:
        strengths = ", ".join(model.best_for[:2]) or category
        reason = (
            f"This looks like {_LABEL[category]} ({cue}); {model.name} is a good fit "
            f"for {strengths}."
        )
    return Choice(model=model, reason=reason, confidence=confidence, category=category)
