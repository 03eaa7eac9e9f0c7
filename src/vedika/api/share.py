"""Share links, export and import of a conversation (issue 18; docs/protocol.md).

- `POST|GET|DELETE /ai/conversations/{id}/share`: the owner's one live link to a
  read-only snapshot of the conversation (sharing again updates the snapshot).
- `GET /shared/{share_id}`: that snapshot as JSON, for anyone holding the link (the
  HTML page `/s/{share_id}` is vedika.web.shared's).
- `GET /ai/conversations/{id}/export?format=md|json` and `POST
  /ai/conversations/import`: the versioned JSON format `vedika.conversation` v1.

Ownership is the conversation's: only the owner key that holds it now may share,
revoke or export it. Cookie-authenticated state changes pass the CSRF guard.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from vedika.api.csrf import csrf_guard
from vedika.api.deps import CurrentSession, ServicesDep
from vedika.api.responses import JSONResponse
from vedika.errors import BadRequest, NotFound, VedikaError
from vedika.identity.sessions import DeviceSession
from vedika.protocol import iso, utcnow
from vedika.scale.ratelimit import enforce
from vedika.services import Services
from vedika.store import conversations as data
from vedika.store import shares, transfer, tree

router = APIRouter(tags=["share"])

CsrfChecked = Annotated[None, Depends(csrf_guard)]
FORMAT = "vedika.conversation"
VERSION = 1
_ENDED = {"complete", "stopped"}
_CITATION_FIELDS = ("index", "title", "url", "site", "snippet", "page", "section")
ShareId = Annotated[str, Path(max_length=64)]
ConversationId = Annotated[str, Path(max_length=64)]

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such conversation of yours"}
}
_CSRF: dict[int | str, dict[str, Any]] = {
    403: {"description": "Refused as a possible cross-site request (CSRF)"}
}


class ShareRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    allow_indexing: StrictBool = False  # `0` or `"yes"`: a clear 400


# ---------------------------------------------------------------- what is shown


def _citation(raw: Any, *, public: bool) -> dict[str, Any] | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("index"), int):
        return None
    fields = _CITATION_FIELDS if public else (*_CITATION_FIELDS, "file_id")
    out = {k: raw[k] for k in fields if raw.get(k) is not None}
    out.setdefault("title", "")
    return out


async def _ended_messages(
    services: Services, conversation_id: str, *, public: bool
) -> list[dict[str, Any]]:
    """The questions and the answers that ended well on the conversation's active path
    (the branch its pages show), root first: what a snapshot or an export holds (an
    answer still being written, or failed, is not; other branches are not)."""
    rows = (await tree.shown_path(services.store, conversation_id=conversation_id)).rows
    out = []
    for row in rows:
        m = dict(zip(data.MESSAGE_VIEW, row, strict=True))
        if m["role"] not in ("user", "assistant") or not m["content"]:
            continue
        if m["role"] == "assistant" and m["status"] not in _ENDED:
            continue
        citations = [c for c in (_citation(c, public=public) for c in m["citations"] or []) if c]
        out.append(
            {
                "role": m["role"],
                "content": m["content"],
                "created_at": iso(m["created_at"]),
                "model": m["model"] if m["role"] == "assistant" else None,
                "citations": citations,
            }
        )
    return out


async def _owned(services: Services, session: DeviceSession, conversation_id: str) -> Any:
    conv = await data.listed_conversation(
        services.store, conversation_id=conversation_id, device_id=session.owner
    )
    if conv is None:
        raise NotFound("There is no conversation with that id.", code="conversation_not_found")
    return conv


def _share_body(request: Request, share: shares.Share) -> dict[str, Any]:
    return {
        "share_id": share.id,
        "url": f"{str(request.base_url).rstrip('/')}/s/{share.id}",
        "json_url": f"/shared/{share.id}",
        "conversation_id": share.conversation_id,
        "title": share.title,
        "allow_indexing": share.allow_indexing,
        "message_count": len(share.snapshot.get("messages", [])),
        "created_at": iso(share.created_at),
        "updated_at": iso(share.updated_at),
    }


# ---------------------------------------------------------------- share links


@router.post(
    "/ai/conversations/{conversation_id}/share",
    status_code=201,
    responses={200: {"description": "The live link, its snapshot updated"}, **_NOT_FOUND, **_CSRF},
)
async def share_conversation(
    request: Request,
    services: ServicesDep,
    session: CurrentSession,
    conversation_id: ConversationId,
    _csrf: CsrfChecked,
    body: ShareRequest | None = None,
) -> Response:
    """Share a read-only snapshot of the conversation as it is now: a new link (201), or
    the live link showing the conversation as it is now (200)."""
    conv = await _owned(services, session, conversation_id)
    snapshot = {"messages": await _ended_messages(services, conversation_id, public=True)}
    async with services.store.tx() as conn:
        share, created = await shares.save_share(
            conn,
            conversation_id=conversation_id,
            owner=session.owner,
            title=conv.title,
            snapshot=snapshot,
            allow_indexing=bool(body and body.allow_indexing),
            now=utcnow(),
        )
    return JSONResponse(_share_body(request, share), status_code=201 if created else 200)


@router.get("/ai/conversations/{conversation_id}/share", responses=_NOT_FOUND)
async def get_share(
    request: Request,
    services: ServicesDep,
    session: CurrentSession,
    conversation_id: ConversationId,
) -> Response:
    """The conversation's live link, or 404 (`share_not_found`) when it has none."""
    await _owned(services, session, conversation_id)
    async with services.store.read() as conn:
        share = await shares.live_share(conn, conversation_id=conversation_id)
    if share is None:
        raise NotFound("This conversation is not shared.", code="share_not_found")
    return JSONResponse(_share_body(request, share))


@router.delete("/ai/conversations/{conversation_id}/share", responses={**_NOT_FOUND, **_CSRF})
async def revoke_share(
    services: ServicesDep,
    session: CurrentSession,
    conversation_id: ConversationId,
    _csrf: CsrfChecked,
) -> dict[str, Any]:
    """Revoke the live link: from now on it answers 410 on every instance."""
    await _owned(services, session, conversation_id)
    async with services.store.tx() as conn:
        revoked = await shares.revoke_share(conn, conversation_id=conversation_id, now=utcnow())
    if not revoked:
        raise NotFound("This conversation is not shared.", code="share_not_found")
    return {"success": True, "revoked": True, "conversation_id": conversation_id}


async def readable_share(services: Services, share_id: str) -> shares.Share:
    """The link's share if it can be read; NotFound, or 410 `share_revoked`."""
    share = None
    if re.fullmatch(shares.SHARE_ID_PATTERN, share_id):
        share = await shares.public_share(services.store, share_id=share_id)
    if share is None:
        raise NotFound("There is no shared conversation at this link.", code="share_not_found")
    if share.revoked_at is not None:
        raise VedikaError(
            "This link was revoked by the person who shared it.", code="share_revoked", status=410
        )
    return share


def shared_body(share: shares.Share) -> dict[str, Any]:
    return {
        "share_id": share.id,
        "title": share.title,
        "shared_at": iso(share.updated_at),
        "allow_indexing": share.allow_indexing,
        "messages": share.snapshot.get("messages", []),
    }


@router.get(
    "/shared/{share_id}",
    responses={404: {"description": "No such link"}, 410: {"description": "Link revoked"}},
)
async def shared_json(services: ServicesDep, share_id: ShareId) -> Response:
    """The snapshot a link shows, as JSON; no session needed (the link is the grant)."""
    share = await readable_share(services, share_id)
    response = JSONResponse(shared_body(share))
    response.headers["Cache-Control"] = "no-store"
    if not share.allow_indexing:
        response.headers["X-Robots-Tag"] = "noindex"
    return response


# ---------------------------------------------------------------- export


_MARKER = re.compile(r"\[(\d{1,3})\](?!\()")


def _md_line(text: str) -> str:
    return " ".join(text.split())


def export_markdown(title: str, exported_at: str, items: list[dict[str, Any]]) -> str:
    """Markdown: the title, each question and answer under its heading, every answer's
    citations as footnotes (`[^n]`, numbered through the whole document)."""
    out = [f"# {_md_line(title)}", "", f"*Exported from Vedika on {exported_at}.*", ""]
    label = 0
    for item in items:
        heading = "Question" if item["role"] == "user" else "Answer"
        if item.get("model"):
            heading += f" ({_md_line(item['model'])})"
        out += [f"## {heading}", ""]
        text = item["content"].rstrip()
        labels: dict[int, int] = {}
        for c in item.get("citations") or []:
            label += 1
            labels[c["index"]] = label

        def footnote(match: re.Match[str], labels: dict[int, int] = labels) -> str:
            n = labels.get(int(match.group(1)))
            return f"[^{n}]" if n is not None else match.group(0)

        out += [_MARKER.sub(footnote, text), ""]
        for c in item.get("citations") or []:
            name = _md_line(c.get("title") or c.get("url") or "Source")
            url = c.get("url")
            where = f"[{name}](<{url}>)" if url else name
            extra = [_md_line(str(c[k])) for k in ("site", "section") if c.get(k)]
            if c.get("page"):
                extra.append(f"page {c['page']}")
            tail = f" ({', '.join(extra)})" if extra else ""
            out.append(f"[^{labels[c['index']]}]: {where}{tail}")
        if item.get("citations"):
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def _filename(title: str, ext: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", title).strip("-.")[:60] or "conversation"
    return f"{stem}.{ext}"


@router.get(
    "/ai/conversations/{conversation_id}/export",
    responses={
        200: {
            "description": "The conversation as Markdown or as `vedika.conversation` JSON",
            "content": {"text/markdown": {}, "application/json": {}},
        },
        **_NOT_FOUND,
    },
)
async def export_conversation(
    services: ServicesDep,
    session: CurrentSession,
    conversation_id: ConversationId,
    format: Literal["md", "json"] = Query("json"),
) -> Response:
    """The conversation as a file: Markdown (citations as footnotes) or JSON."""
    conv = await _owned(services, session, conversation_id)
    items = await _ended_messages(services, conversation_id, public=False)
    now = iso(utcnow()) or ""
    if format == "md":
        body = export_markdown(conv.title, now, items).encode()
        media = "text/markdown; charset=utf-8"
    else:
        doc = {
            "format": FORMAT,
            "version": VERSION,
            "title": conv.title,
            "model": conv.model,
            "created_at": iso(conv.created_at),
            "updated_at": iso(conv.updated_at),
            "exported_at": now,
            "messages": items,
        }
        return JSONResponse(
            doc,
            headers={
                "Content-Disposition": f'attachment; filename="{_filename(conv.title, "json")}"'
            },
        )
    return Response(
        body,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{_filename(conv.title, "md")}"'},
    )


# ---------------------------------------------------------------- import


class ImportedCitation(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    index: int = Field(..., ge=1, le=1000)
    title: str = Field("", max_length=500)
    url: str | None = Field(None, max_length=2000, pattern=r"^https?://")
    site: str | None = Field(None, max_length=300)
    snippet: str | None = Field(None, max_length=2000)
    page: int | None = Field(None, ge=0, le=1_000_000)
    section: str | None = Field(None, max_length=300)
    file_id: str | None = Field(None, max_length=64)


class ImportedMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    role: Literal["user", "assistant"]
    content: str = Field(..., min_length=1, max_length=200_000)
    created_at: str | None = Field(None, max_length=40)
    model: str | None = Field(None, max_length=200)
    citations: list[ImportedCitation] = Field(default_factory=list, max_length=100)


class ImportedConversation(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    format: Literal["vedika.conversation"]
    version: Literal[1]
    title: str = Field("Imported conversation", max_length=200)
    model: str | None = Field(None, max_length=200)
    created_at: str | None = Field(None, max_length=40)
    updated_at: str | None = Field(None, max_length=40)
    exported_at: str | None = Field(None, max_length=40)
    messages: list[ImportedMessage] = Field(..., min_length=1)


def _problems(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"field": ".".join(str(p) for p in err["loc"]), "problem": err["msg"]}
        for err in exc.errors(include_url=False, include_input=False)[:20]
    ]


def validated_import(raw: Any, *, max_messages: int, max_chars: int) -> ImportedConversation:
    """The document, or 400 (not a JSON object, or not this format) / 422 (this format,
    but invalid or too big), each with what is wrong."""
    if not isinstance(raw, dict):
        raise BadRequest("Send a JSON object in the vedika.conversation format.", code="bad_import")
    if raw.get("format") != FORMAT:
        raise BadRequest(
            f'This is not a conversation export: "format" must be "{FORMAT}".',
            code="bad_import_format",
        )
    if raw.get("version") != VERSION:
        raise VedikaError(
            f"This server reads version {VERSION} of the format.",
            code="unsupported_import_version",
            status=422,
        )
    msgs = raw.get("messages")
    if isinstance(msgs, list) and len(msgs) > max_messages:
        raise VedikaError(
            f"An import holds at most {max_messages} messages.", code="import_too_large", status=422
        )
    try:
        doc = ImportedConversation.model_validate(raw)
    except ValidationError as exc:
        raise VedikaError(
            "The conversation is not valid.",
            code="invalid_import",
            status=422,
            details={"problems": _problems(exc)},
        ) from None
    if sum(len(m.content) for m in doc.messages) > max_chars:
        raise VedikaError(
            f"An import holds at most {max_chars} characters of text.",
            code="import_too_large",
            status=422,
        )
    return doc


@router.post(
    "/ai/conversations/import",
    status_code=201,
    responses={
        400: {"description": "Not JSON, or not a vedika.conversation document"},
        413: {"description": "Too large a body"},
        429: {"description": "Too many imports this minute"},
        422: {"description": "Invalid or too large a conversation"},
        **_CSRF,
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def import_conversation(
    request: Request, services: ServicesDep, session: CurrentSession, _csrf: CsrfChecked
) -> Response:
    """A new conversation of the caller, holding the messages of a `vedika.conversation`
    v1 document (as `GET .../export?format=json` gives), stored in one transaction."""
    await enforce(
        services.limiter,
        f"import:{session.owner}",
        services.settings.rate_imports_per_minute,
        60,
        "imports",
    )
    try:
        raw = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise BadRequest("The body is not JSON.", code="bad_import") from None
    settings = services.settings
    doc = validated_import(
        raw, max_messages=settings.import_max_messages, max_chars=settings.import_max_chars
    )
    title = " ".join(doc.title.split()) or "Imported conversation"
    items = [
        {
            "role": m.role,
            "content": m.content,
            "model": m.model,
            "citations": [c.model_dump(exclude_none=True) for c in m.citations],
        }
        for m in doc.messages
    ]
    async with services.store.tx() as conn:
        conversation_id = await transfer.insert_conversation(
            conn,
            owner=session.owner,
            title=title,
            model=doc.model or "imported",
            items=items,
            now=utcnow(),
        )
    return JSONResponse(
        {
            "conversation_id": conversation_id,
            "title": title,
            "message_count": len(items),
            "success": True,
        },
        status_code=201,
    )
