"""Where a turn goes in its conversation's tree (issue 18; docs/protocol.md "Branches").

A chat request may name one of `parent_id` (continue from that answer), `edit_of` (a
question: the new question becomes its sibling) or `regenerate` (an answer: a new
answer to the same question becomes its sibling). Without them a turn continues from
the conversation's active leaf, so a client that knows nothing of branches sees one
linear conversation. The new answer becomes the active leaf.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from vedika.errors import BadRequest, NotFound
from vedika.protocol import ChatRequest
from vedika.store import conversations as data
from vedika.store import tree


@dataclass(frozen=True, slots=True)
class Placement:
    """A turn's place: `parent` is the new question's parent (the end of the model's
    context); with `question` set (regenerating), no question is written and the new
    answer's parent is that existing question."""

    parent: str | None
    question: str | None = None


NEW_CONVERSATION = Placement(parent=None)


def check(req: ChatRequest) -> None:
    """What can be refused before anything is read: at most one branch field, and
    only in an existing conversation."""
    named = [n for n in ("parent_id", "edit_of", "regenerate") if getattr(req, n)]
    if len(named) > 1:
        raise BadRequest(
            f"Send at most one of parent_id, edit_of and regenerate (got {', '.join(named)}).",
            code="conflicting_branch_fields",
        )
    if named and not req.conversation_id:
        raise BadRequest(
            f"{named[0]} needs the conversation_id of the conversation it belongs to.",
            code="branch_needs_conversation",
        )


def _not_here(field: str) -> NotFound:
    return NotFound(
        f"The message named in {field} is not in this conversation.",
        code="message_not_found",
        details={"field": field},
    )


async def regenerated_question(conn: AsyncConnection, *, device_id: str, req: ChatRequest) -> str:
    """The text of the question whose answer `req.regenerate` is: what the new answer
    answers (and is routed by), whatever `message` says. Checked again in the turn's
    transaction (`place`)."""
    assert req.regenerate and req.conversation_id
    conv = await data.get_conversation(
        conn, conversation_id=req.conversation_id, device_id=device_id
    )
    if conv is None:
        raise NotFound("There is no conversation with that id.", code="conversation_not_found")
    shape = await tree.tree_of(conn, conversation_id=req.conversation_id)
    if req.regenerate not in shape.parents:
        raise _not_here("regenerate")
    answer = await data.find_message(conn, message_id=req.regenerate, device_id=device_id)
    question_id = shape.parents[req.regenerate]
    question = (
        await data.find_message(conn, message_id=question_id, device_id=device_id)
        if question_id
        else None
    )
    if answer is None or answer.role != "assistant" or question is None:
        raise BadRequest("regenerate must name an answer.", code="not_an_answer")
    return question.content


def place(conn: Connection, req: ChatRequest, *, locked: tree.Locked) -> Placement:
    """Where the turn goes (in its transaction, the conversation row locked)."""
    cid = locked.id
    if req.regenerate:
        answer = tree.member(conn, conversation_id=cid, message_id=req.regenerate)
        if answer is None:
            raise _not_here("regenerate")
        question = (
            tree.member(conn, conversation_id=cid, message_id=answer.parent_id)
            if answer.parent_id
            else None
        )
        if answer.role != "assistant" or question is None:
            raise BadRequest("regenerate must name an answer.", code="not_an_answer")
        return Placement(parent=question.parent_id, question=question.id)
    if req.edit_of:
        edited = tree.member(conn, conversation_id=cid, message_id=req.edit_of)
        if edited is None:
            raise _not_here("edit_of")
        if edited.role != "user":
            raise BadRequest("edit_of must name a question.", code="not_a_question")
        return Placement(parent=edited.parent_id)
    if req.parent_id:
        parent = tree.member(conn, conversation_id=cid, message_id=req.parent_id)
        if parent is None:
            raise _not_here("parent_id")
        if parent.role != "assistant":
            raise BadRequest(
                "parent_id must name an answer: a question continues from one.",
                code="not_an_answer",
            )
        return Placement(parent=parent.id)
    return Placement(parent=locked.active_leaf)
