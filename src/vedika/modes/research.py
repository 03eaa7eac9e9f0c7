"""Research: plan sub-questions, search each (web and/or files), read the best pages,
then write a longer report with sections and [n] citations.

Progress goes out as `research_step` events: step 1 is the plan, then one step per
sub-question, then the writing. Bounded by VEDIKA_RESEARCH_MAX_SEARCHES (sub-questions),
VEDIKA_RESEARCH_MAX_PAGES (pages read, shared between the searches),
VEDIKA_RESEARCH_MAX_SOURCES (numbered sources the report may cite) and
VEDIKA_RESEARCH_TIMEOUT (planning and searching; past it the report is written from
what was gathered). A stop ends the run wherever it is; the generation keeps what
was written.

With the offline model (no language model connected) the plan is the question
itself and the report is the offline answerer's: the best passages of the gathered
sources, quoted and cited, after a line saying that no model is connected.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from typing import Any

from vedika import protocol as p
from vedika.models.providers import GenerationRequest
from vedika.modes.base import Answer, Mode, ModeEnv, register_mode
from vedika.modes.common import messages_for, passages_of, stream_into
from vedika.modes.plan import parse_plan
from vedika.protocol import today
from vedika.sources.citations import SOURCE_CHARS, Source, prompt_context

PLAN_PROMPT = (
    "You plan research for an answer engine. Today's date is {today}. Break the user's "
    "question into at most {n} focused web-search sub-questions that together cover it "
    "(fewer when the question is simple). Reply with JSON only, in this shape: "
    '{{"sub_questions": ["...", "..."]}}'
)
REPORT_PROMPT = (
    "You are Vedika, an AI answer engine, writing a research report. Today's date is "
    "{today}. Write a thorough, well-organised report in Markdown that answers the "
    "user's question: open with a short summary, then sections with `##` headings (one "
    "per main aspect), and close with a conclusion. Be specific: names, figures, dates. "
    "The research looked into:\n{questions}"
)
NO_SOURCES = (
    "No sources to search: web search is not configured on this server and no files "
    "are attached. The report is written without sources."
)


@dataclass(slots=True)
class Gathered:
    """The sources found so far, numbered in the order they were found, without
    duplicates (a page found twice keeps one number and gains the new passage)."""

    limit: int
    sources: list[Source] = field(default_factory=list)
    _keys: dict[tuple[Any, ...], Source] = field(default_factory=dict)

    def add(self, found: list[Source]) -> list[p.Citation]:
        """Add a search's sources; returns the citations of those it found."""
        cited: list[p.Citation] = []
        for source in found:
            key = _key(source)
            known = self._keys.get(key)
            if known is None:
                if len(self.sources) >= self.limit:
                    continue
                source.index = len(self.sources) + 1
                self.sources.append(source)
                self._keys[key] = known = source
            elif source.text not in known.text and len(known.text) < SOURCE_CHARS:
                known.text = (known.text + "\n…\n" + source.text)[:SOURCE_CHARS]
            cited.append(known.citation())
        return cited


def _key(source: Source) -> tuple[Any, ...]:
    if source.url:
        return ("url", source.url)
    return ("file", source.file_id, source.page, source.section)


class _Steps:
    """Numbered research steps; each is published when it starts and when it ends."""

    def __init__(self, answer: Answer, total: int) -> None:
        self.answer = answer
        self.total = total
        self.current: dict[str, Any] | None = None

    def start(self, step: int, label: str, phase: str) -> None:
        self.current = {"step": step, "label": label, "phase": phase}
        self._send(label, [], "running")

    def done(self, label: str, citations: list[p.Citation] | None = None) -> None:
        self._send(label, citations or [], "done")
        self.current = None

    def stopped(self) -> None:
        if self.current is not None:
            self._send(self.current["label"], [], "stopped")
            self.current = None

    def _send(self, label: str, citations: list[p.Citation], status: str) -> None:
        assert self.current is not None
        self.answer.step(
            p.ResearchStep,
            step=self.current["step"],
            total=self.total,
            label=label,
            citations=citations,
            phase=self.current["phase"],
            status=status,
        )


@register_mode
class ResearchMode(Mode):
    name = "research"
    order = 1

    async def run(self, answer: Answer, env: ModeEnv) -> None:
        settings = env.settings
        limit = settings.research_max_searches
        steps = _Steps(answer, total=limit + 2)  # until the plan says how many
        try:
            await self._run(answer, env, steps, limit)
        except asyncio.CancelledError:
            steps.stopped()
            raise

    async def _run(self, answer: Answer, env: ModeEnv, steps: _Steps, limit: int) -> None:
        turn = answer.turn
        settings = env.settings
        provider = env.models.provider_for(turn.model)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.research_timeout

        steps.start(1, "Planning the research", "plan")
        if provider.generative:
            system = PLAN_PROMPT.format(today=today(), n=limit)
            messages = await messages_for(answer, env, system)
            request = GenerationRequest(
                model=turn.model.upstream_id, messages=messages, max_tokens=600
            )
            try:
                async with asyncio.timeout(max(deadline - loop.time(), 1.0)):
                    plan = await stream_into(answer, provider, request, write=False)
                questions = parse_plan(plan.text, turn.text, limit)
            except TimeoutError:
                questions = parse_plan("", turn.text, limit)
        else:
            questions = parse_plan("", turn.text, limit)
        steps.total = len(questions) + 2
        steps.done(
            f"Planned {len(questions)} search{'es' if len(questions) > 1 else ''}"
            if len(questions) > 1
            else "Researching the question as asked"
        )

        scope = _scope(answer, env)
        gathered = Gathered(limit=settings.research_max_sources)
        pages = max(
            1, min(settings.search_results, math.ceil(settings.research_max_pages / len(questions)))
        )
        per_search = max(2, math.ceil(settings.research_max_sources / len(questions)) + 1)
        for n, question in enumerate(questions, start=2):
            steps.start(n, f"Searching: {question}", "search")
            remaining = deadline - loop.time()
            if not scope or env.sources is None:
                steps.done(NO_SOURCES if n == 2 else f"Nothing to search for: {question}")
                continue
            if remaining <= 0:
                steps.done(f"Skipped (time limit reached): {question}")
                continue
            try:
                async with asyncio.timeout(remaining):
                    found = await env.sources.retrieve(
                        device_id=turn.device_id,
                        conversation_id=turn.conversation_id,
                        question=question,
                        sources=scope,
                        attachments=turn.attachments,
                        passages=per_search,
                        pages=pages,
                    )
            except TimeoutError:
                steps.done(f"Time limit reached while searching: {question}")
                continue
            cited = gathered.add(found.sources)
            what = f"{len(cited)} source{'s' if len(cited) != 1 else ''}" if cited else "nothing"
            steps.done(f"Found {what} for: {question}", cited)

        sources = gathered.sources
        if sources:
            answer.set_citations([s.citation() for s in sources])
        steps.start(steps.total, "Writing the report", "write")
        listed = "\n".join(f"- {q}" for q in questions)
        system = REPORT_PROMPT.format(today=today(), questions=listed)
        context = prompt_context(sources) if sources else ""
        if context:
            system += "\n\n" + context
        messages = await messages_for(answer, env, system, reserve=len(context))
        request = GenerationRequest(
            model=turn.model.upstream_id, messages=messages, passages=passages_of(sources)
        )
        await stream_into(answer, provider, request)
        steps.done(f"Report written from {len(sources)} sources" if sources else "Report written")


def _scope(answer: Answer, env: ModeEnv) -> list[str]:
    """What to search: the turn's sources; research with none chosen uses the web."""
    turn = answer.turn
    scope = list(turn.sources)
    if turn.attachments and "files" not in scope:
        scope.append("files")
    web = env.sources is not None and env.sources.web is not None
    if not scope and web:
        scope = ["web"]
    if "web" in scope and not web:
        scope.remove("web")
    return scope
