"""Search: answer from the turn's sources (web, files), citing them, in one model call.

The turn's sources are retrieved first and announced with a `sources` event before
the first chunk (docs/sources.md); the model gets them numbered after the system
prompt. Without sources it simply answers.
"""

from __future__ import annotations

from vedika.models.providers import GenerationRequest
from vedika.modes.base import Answer, Mode, ModeEnv, register_mode
from vedika.modes.common import SYSTEM_PROMPT, messages_for, passages_of, stream_into, today
from vedika.sources.retrieval import Retrieved


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
        early, answer.early = answer.early, None
        if early is not None and not (retrieved or note):
            # Sent while the turn was being stored: the same request this mode would
            # make (vedika.modes.early.plain_request), already under way.
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
