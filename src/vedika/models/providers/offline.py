"""The offline model: always there, so a fresh install answers something useful.

With sources (the passages retrieval found for the question), it answers from them
extractively: the best sentences of the best passages, cited [n], after one line
saying that no language model is connected. Without sources it explains how to
connect one. It streams word by word, like a real model, so every client path is
exercised.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

from vedika.models.providers.base import (
    ContextPassage,
    Delta,
    GenerationRequest,
    Provider,
    register,
)
from vedika.sources.ranking import sentences, terms

EXPLANATION = """\
**No language model is connected to this Vedika server yet**, so I can't write an answer \
to your question.

To connect one, set one of these before starting Vedika (in the environment or in `.env`):

- `OPENAI_BASE_URL` (and `OPENAI_API_KEY` if it needs one): any OpenAI-compatible \
endpoint, such as OpenAI, vLLM (`http://gpu-host:8000/v1`), llama.cpp server, LM Studio \
or OpenRouter. Its models are discovered from `/v1/models`.
- `ANTHROPIC_API_KEY`: Anthropic's Claude models.
- `OLLAMA_HOST`: an Ollama server (one running on `127.0.0.1:11434` is found on its own).

Then restart Vedika and pick a model, or leave **Best** to choose for you. \
See `docs/configuration.md` for the models file and every other setting.
"""

_WORDS = re.compile(r"\S+\s*|\s+")

NO_MODEL_LINE = (
    "_No language model is connected to this Vedika server, so this answer quotes the "
    "passages of your sources that best match your question. For written answers, connect "
    "a model: set `OPENAI_BASE_URL`, `ANTHROPIC_API_KEY` or `OLLAMA_HOST` and restart "
    "(see docs/configuration.md)._"
)
QUOTES = 4  # passages quoted
SENTENCES = 3  # sentences per passage, at most
_LEAD = re.compile(r"^(#{1,6}|[-*+>]|\d+\.)\s+")
_MARKDOWN = re.compile(r"([\\`*_\[\]<>#|])")


def extractive_answer(req: GenerationRequest) -> str:
    """The best sentences of the best passages, each cited [n], after one line saying
    that no model is connected. Passages come best first (retrieval ranks them)."""
    question = next((m["content"] for m in reversed(req.messages) if m["role"] == "user"), "")
    wanted = set(terms(question))
    picked: list[tuple[ContextPassage, list[str]]] = []
    for passage in req.passages:
        sents = [_LEAD.sub("", x) for x in sentences(passage.text.replace("\n…\n", "\n\n"))]
        sents = [x for x in sents if len(x) >= 25] or sents
        hits = [(len(wanted.intersection(terms(s))), i) for i, s in enumerate(sents)]
        best = sorted(i for _n, i in sorted(hits, key=lambda h: (-h[0], h[1]))[:SENTENCES] if _n)
        if best:
            picked.append((passage, [sents[i] for i in best]))
        if len(picked) == QUOTES:
            break
    if not picked:  # nothing matches word for word: the opening of the best passages
        picked = [(p, sentences(p.text)[:2]) for p in req.passages[:2]]
    lines = [NO_MODEL_LINE, "", "Here is what your sources say:", ""]
    for passage, quote in picked:
        where = _MARKDOWN.sub(r"\\\1", passage.title)
        if passage.page is not None:
            where += f", page {passage.page}"
        text = " ".join(quote)
        lines.append(f"- From *{where}*: \u201c{text}\u201d [{passage.index}]")
    return "\n".join(lines) + "\n"


@register
class Offline(Provider):
    kind = "offline"
    generative = False
    delay_seconds: float = 0.008

    async def stream(self, req: GenerationRequest) -> AsyncIterator[Delta]:
        text = extractive_answer(req) if req.passages else EXPLANATION
        words = _WORDS.findall(text)
        for word in words:
            if self.delay_seconds:
                await asyncio.sleep(self.delay_seconds)
            yield Delta(text=word)
        prompt_words = sum(len(m["content"].split()) for m in req.messages)
        yield Delta(finish_reason="stop", input_tokens=prompt_words, output_tokens=len(words))

    async def list_models(self) -> list[str]:
        return ["offline"]
