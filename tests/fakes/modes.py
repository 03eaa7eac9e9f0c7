"""Scripts of the fake upstream's agent and research models (pure; a test fixture).

The fake reads the conversation it is sent (the question, the tool results so far,
whether tools may be called, whether the system prompt asks for a research plan) and
decides deterministically what to answer: text, tool calls, or both. Wire encoding is
upstream.py's business; everything here is plain data, so tests can predict replies.

==========================  ===================================================================
model                       behaviour
==========================  ===================================================================
fake-agent                  with tools: round 0 writes "Let me look that up." and calls
                            ``web_search {query: <question>}``; round 1 calls ``fetch_url``
                            with the first URL in the previous result (if none, skips to
                            the calculator); round 2 calls ``calculator`` with the arithmetic
                            in the question (or ``6 * 7``); then, or whenever tools may not be
                            called (no tools, ``tool_choice: none``), the final answer
                            :func:`agent_final`.
fake-agent-loop             calls ``current_time {}`` every round while it may; final answer
                            when it may not.
fake-agent-fail             round 0 asks for four calls at once: ``fetch_url`` of a cloud
                            metadata address, ``calculator`` of ``__import__('os')...``, an
                            unknown tool ``no_such_tool``, and ``calculator`` with arguments
                            that are not JSON; then the final answer, counting the errors.
fake-research               asked for a plan (the system prompt mentions "sub-questions"):
                            a JSON plan in a code fence after a sentence (:func:`plan_for`);
                            otherwise a report with ``##`` sections citing every numbered
                            source of the system prompt (:func:`research_report`).
fake-research-list          the plan as a numbered list after a sentence; the same report.
fake-research-junk          a plan with no questions in it (prose); the same report.
fake-research-slow,         as fake-research and fake-agent, 60 ms per token (for stop and
fake-agent-slow             resume tests).
==========================  ===================================================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

URL = re.compile(r"https?://[^\s)\]>\"']+")
ARITHMETIC = re.compile(r"[\d(][\d\s.+\-*/^()%]*[\d)]")
SOURCE_LINE = re.compile(r"^\[(\d+)\] (.+?)(?: \((?:[^()]*)\))?$", re.M)
METADATA_URL = "http://169.254.169.254/latest/meta-data/"
EVIL_EXPRESSION = "__import__('os').system('id')"
BAD_JSON = '{"expression": 6 *'


@dataclass(slots=True)
class Result:
    content: str
    is_error: bool


@dataclass(slots=True)
class Conversation:
    """What the fake read from a request, in either wire format."""

    question: str
    system: str
    results: list[Result] = field(default_factory=list)
    may_call: bool = False


@dataclass(slots=True)
class Reply:
    text: str = ""
    calls: list[tuple[str, dict[str, Any] | str]] = field(default_factory=list)  # (name, args)


def is_scripted(base: str) -> bool:
    return base.startswith(("fake-agent", "fake-research"))


def topic_of(question: str) -> str:
    return " ".join(question.split()).rstrip("?.! ")


def plan_questions(question: str) -> list[str]:
    topic = topic_of(question)
    return [f"What is {topic}?", f"{topic}: key facts and figures", f"{topic}: history"]


def plan_for(base: str, question: str) -> str:
    questions = plan_questions(question)
    if base == "fake-research-list":
        return "Here is a plan:\n\n" + "\n".join(
            f"{i}. **{q}**" for i, q in enumerate(questions, 1)
        )
    if base == "fake-research-junk":
        return "I would simply look it up"
    quoted = ", ".join(f'"{q}"' for q in questions)
    return f'Sure, here is the plan.\n```json\n{{"sub_questions": [{quoted}]}}\n```'


def research_report(question: str, system: str) -> str:
    sources = SOURCE_LINE.findall(system)
    findings = "\n".join(f"- {title} [{n}]" for n, title in sources) or "- No sources were found."
    return (
        f"## Summary\n\nResearch report on: {topic_of(question)}.\n\n"
        f"## Findings\n\n{findings}\n\n"
        "## Conclusion\n\nThe sources above answer the question."
    )


def agent_final(base: str, conv: Conversation) -> str:
    n = len(conv.results)
    if base == "fake-agent-fail":
        errors = sum(r.is_error for r in conv.results)
        return f"Agent answer to: {conv.question}. {errors} of {n} tool calls failed."
    if base == "fake-agent-loop":
        return f"Agent answer to: {conv.question}. I stopped after {n} tool calls."
    last = conv.results[-1].content.splitlines()[0] if conv.results else "nothing"
    return f"Agent answer to: {conv.question}. I used {n} tools; the last one said: {last}"


def reply(base: str, conv: Conversation) -> Reply:
    """What the scripted model `base` answers to `conv`."""
    if base.startswith("fake-research"):
        if "sub-questions" in conv.system:
            return Reply(text=plan_for(base, conv.question))
        return Reply(text=research_report(conv.question, conv.system))
    if not conv.may_call:
        return Reply(text=agent_final(base, conv))
    n = len(conv.results)
    if base == "fake-agent-loop":
        return Reply(calls=[("current_time", {})])
    if base == "fake-agent-fail":
        if n:
            return Reply(text=agent_final(base, conv))
        return Reply(
            calls=[
                ("fetch_url", {"url": METADATA_URL}),
                ("calculator", {"expression": EVIL_EXPRESSION}),
                ("no_such_tool", {"x": 1}),
                ("calculator", BAD_JSON),
            ]
        )
    # fake-agent (and any other fake-agent-*)
    if n == 0:
        return Reply(text="Let me look that up.", calls=[("web_search", {"query": conv.question})])
    if n == 1:
        found = URL.search(conv.results[0].content)
        if found:
            return Reply(calls=[("fetch_url", {"url": found.group(0)})])
    if n <= 2:
        match = ARITHMETIC.search(conv.question)
        expression = match.group(0).strip() if match and not match.group(0).isdigit() else "6 * 7"
        return Reply(calls=[("calculator", {"expression": expression})])
    return Reply(text=agent_final(base, conv))


# ---------------------------------------------------------------- reading requests


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and part.get("type", "text") == "text" and "text" in part
        )
    return ""


def _question(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            text = _text(message.get("content")).strip()
            if text:
                return text
    return ""


def read_openai(body: dict[str, Any]) -> Conversation:
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    system = "\n".join(_text(m.get("content")) for m in messages if m.get("role") == "system")
    results = [
        Result(_text(m.get("content")), _text(m.get("content")).startswith("Error"))
        for m in messages
        if m.get("role") == "tool"
    ]
    may_call = bool(body.get("tools")) and body.get("tool_choice") != "none"
    return Conversation(_question(messages), system, results, may_call)


def read_anthropic(body: dict[str, Any]) -> Conversation:
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    results = []
    for m in messages:
        content = m.get("content")
        if m.get("role") == "user" and isinstance(content, list):
            for block in content:
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    results.append(Result(_text(block.get("content")), bool(block.get("is_error"))))
    choice = body.get("tool_choice")
    none = isinstance(choice, dict) and choice.get("type") == "none"
    may_call = bool(body.get("tools")) and not none
    return Conversation(_question(messages), _text(body.get("system")), results, may_call)
