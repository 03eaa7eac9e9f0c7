"""Search: answer from the turn's sources (web, files), citing them, in one model call.

The turn's sources are retrieved first and announced with a `sources` event before
the first chunk (docs/sources.md); the model gets them numbered after the system
prompt. Without sources it simply answers.
"""

from __future__ import annotations

from vedika import protocol as p
from vedika.models.catalogue import ModelInfo
from vedika.models.providers import GenerationRequest
from vedika.modes.base import Answer, Draft, Mode, ModeEnv, Prefetcher, register_mode
from vedika.modes.common import SYSTEM_PROMPT, messages_for, passages_of, stream_into
from vedika.modes.early import EarlyCall
from vedika.protocol import today
from vedika.sources.retrieval import Retrieved


def plain_request(model: ModelInfo, question: str) -> GenerationRequest:
    """The model call of a question without sources in a new conversation."""
    return GenerationRequest(
        model=model.upstream_id,
        messages=[
            {"role": "system", "content": SYSTEM_PROMPT.format(today=today())},
            {"role": "user", "content": question},
        ],
    )


async def retrieve(answer: Answer, env: ModeEnv) -> Retrieved | None:
    """The turn's sources, announced with a `sources` event before the first chunk."""
    turn = answer.turn
    if env.sources is None or not (turn.sources or turn.attachments):
        return None
    retrieved = await env.sources.retrieve(
        device_id=turn.device_id,
        conversation_id=turn.conversation_id,
        question=turn.text,
        sources=turn.sources,
        attachments=turn.attachments,
    )
    if retrieved.sources:
        answer.set_citations(retrieved.citations)
    return retrieved


@register_mode
class SearchMode(Mode):
    name = "search"
    order = 0

    async def run(self, answer: Answer, env: ModeEnv, note: str = "") -> None:
        """`note` (from another mode falling back to this one) is written first."""
        retrieved = await retrieve(answer, env)
        context = retrieved.context() if retrieved else ""
        system = SYSTEM_PROMPT.format(today=today())
        if context:
            system += "\n\n" + context
        provider = env.models.provider_for(answer.turn.model)
        early, answer.prefetched = answer.prefetched, None
        if early is not None and not (retrieved or note):
            # Sent while the turn was being stored (`prefetcher`): the same request
            # this mode would make, already under way.
            await stream_into(answer, provider, early.request, deltas=early.deltas())
            return
        if early is not None:
            await early.cancel()
        messages = await messages_for(answer, env, system, reserve=len(context))
        if note:
            answer.write(note)
        request = GenerationRequest(
            model=answer.turn.model.upstream_id,
            messages=messages,
            passages=passages_of(retrieved.sources) if retrieved else [],
        )
        await stream_into(answer, provider, request)

    def prefetcher(self, req: p.ChatRequest, env: ModeEnv) -> Prefetcher | None:
        """A question that starts a conversation needs nothing stored for its call;
        one with sources does (they are retrieved first)."""
        if not env.settings.early_start or req.conversation_id:
            return None

        def prefetch(draft: Draft) -> EarlyCall | None:
            if draft.sources or draft.attachments:
                return None
            provider = env.models.provider_for(draft.model)
            return EarlyCall(provider, plain_request(draft.model, draft.text))

        return prefetch
