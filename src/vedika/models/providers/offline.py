"""The offline model: always there, so a fresh install answers something useful.

It explains that no language model is connected and how to connect one. It
streams word by word, like a real model, so every client path is exercised.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

from vedika.models.providers.base import Delta, GenerationRequest, Provider, register

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


@register
class Offline(Provider):
    kind = "offline"
    delay_seconds: float = 0.008

    async def stream(self, req: GenerationRequest) -> AsyncIterator[Delta]:
        words = _WORDS.findall(EXPLANATION)
        for word in words:
            if self.delay_seconds:
                await asyncio.sleep(self.delay_seconds)
            yield Delta(text=word)
        prompt_words = sum(len(m["content"].split()) for m in req.messages)
        yield Delta(finish_reason="stop", input_tokens=prompt_words, output_tokens=len(words))

    async def list_models(self) -> list[str]:
        return ["offline"]
