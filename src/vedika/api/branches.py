"""`POST /ai/conversations/{id}/active`: show another branch (docs/protocol.md
"Branches"). The turns themselves go through the chat routes with `parent_id`,
`edit_of` or `regenerate`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from vedika.api.chat import conversation_body
from vedika.api.csrf import csrf_guard
from vedika.api.deps import CurrentSession, ServicesDep
from vedika.api.responses import JSONResponse
from vedika.errors import NotFound
from vedika.protocol import Text
from vedika.store import conversations as data
from vedika.store import tree

router = APIRouter(tags=["chat"])

# Last among the parameters, so a call with no session is told so (401) first.
CsrfChecked = Annotated[None, Depends(csrf_guard)]


class ActiveRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    message_id: Text = Field(
        ...,
        min_length=1,
        max_length=64,
        description="A message of the conversation; its newest deepest descendant "
        "becomes the active leaf.",
    )


@router.post("/ai/conversations/{conversation_id}/active", response_model=None)
async def switch_branch(
    services: ServicesDep,
    session: CurrentSession,
    conversation_id: str,
    body: ActiveRequest,
    _csrf: CsrfChecked,
) -> JSONResponse:
    """Show the branch through `message_id`: the active leaf becomes the deepest
    latest descendant of that message. Answers the conversation as
    `GET /ai/conversations/{id}` does (the new active path)."""
    async with services.store.tx() as conn:
        conv = await data.get_conversation(
            conn, conversation_id=conversation_id, device_id=session.owner
        )
        if conv is None:
            raise NotFound("There is no conversation with that id.", code="conversation_not_found")
        shape = await tree.tree_of(conn, conversation_id=conversation_id)
        if body.message_id not in shape.parents:
            raise NotFound(
                "That message is not in this conversation.",
                code="message_not_found",
                details={"field": "message_id"},
            )
        leaf = shape.latest_leaf(body.message_id)
        if shape.linear:  # written without parents: store its chain first
            await conn.run_sync(lambda c: tree.linearise(c, conversation_id=conversation_id))
        await tree.set_active(conn, conversation_id=conversation_id, leaf_id=leaf)
    return JSONResponse(await conversation_body(services, session, conversation_id))
