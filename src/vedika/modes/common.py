"""Pieces every mode uses: the system prompt, the history, streaming a model call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from vedika.models.providers import Delta, GenerationRequest, Provider, ToolCall
from vedika.models.providers.base import ContextPassage
from vedika.modes.base import Answer, ModeEnv
from vedika.sources.citations import Source
from vedika.store import tree

SYSTEM_PROMPT = (
    "You are Vedika, an AI answer engine. Answer the user's question directly and "
    "accurately, in Markdown. Use headings, lists, tables and fenced code blocks when "
    "they help. Today's date is {today}."
)


async def messages_for(
    answer: Answer, env: ModeEnv, system: str, *, reserve: int = 0, question: str | None = None
) -> list[dict[str, Any]]:
    """System prompt, the earlier turns that fit the model's context (less `reserve`
    characters, e.g. the sources), the question."""
    turn = answer.turn
    question = question if question is not None else turn.text
    budget = max(2_000, int(turn.model.context_window * 4 * 0.6) - len(question) - reserve)
    past: list[dict[str, str]] = []
    # The context is the path from the root to the question's parent (its branch); a
    # conversation this turn created, or a first question, has nothing before it.
    if not turn.created_conversation and turn.parent_id is not None:
        async with env.store.read() as conn:
            past = await tree.history(
                conn,
                conversation_id=turn.conversation_id,
                parent_id=turn.parent_id,
                budget_chars=budget,
            )
    return [{"role": "system", "content": system}, *past, {"role": "user", "content": question}]


def passages_of(sources: list[Source]) -> list[ContextPassage]:
    """The numbered sources as providers see them (the offline answerer quotes them)."""
    return [
        ContextPassage(
            index=s.index, title=s.title, text=s.text, page=s.page, section=s.section, url=s.url
        )
        for s in sources
    ]


@dataclass(slots=True)
class Round:
    """One model call: the text it wrote, the tools it asked for, why it stopped."""

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None


async def stream_into(
    answer: Answer,
    provider: Provider,
    request: GenerationRequest,
    *,
    write: bool = True,
    prefix: str = "",
    deltas: AsyncIterator[Delta] | None = None,
) -> Round:
    """Run one model call; its text goes into the answer as it arrives (or, with
    `write=False`, is only returned: a research plan is not part of the answer).
    `prefix` is written before the call's first text, if it writes any. `deltas`: the
    call already under way (vedika.modes.early), instead of sending `request`."""
    # The per-token path: keep it to a few checks and one call per delta.
    out = Round()
    parts: list[str] = []
    before = len(answer.text()) if write else 0
    add = answer.write if write else parts.append
    started = not prefix
    inp: int | None = None
    outp: int | None = None
    try:
        async for delta in deltas if deltas is not None else provider.stream(request):
            if delta.text:
                if not started:
                    started = True
                    add(prefix)
                add(delta.text)
            if delta.tool_calls:
                out.tool_calls.extend(delta.tool_calls)
            if delta.finish_reason:
                out.finish_reason = delta.finish_reason
            # Some servers repeat cumulative usage: the last value of a call counts.
            if delta.input_tokens is not None:
                inp = delta.input_tokens
            if delta.output_tokens is not None:
                outp = delta.output_tokens
    finally:
        answer.add_usage(inp, outp)
    if write:
        if out.finish_reason:
            answer.finish_reason = out.finish_reason
        written = answer.text()[before:]
        out.text = written[len(prefix) :] if started and prefix else written
    else:
        text = "".join(parts)
        out.text = text[len(prefix) :] if started and prefix else text
    return out
