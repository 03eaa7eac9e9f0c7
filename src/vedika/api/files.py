"""Files: `POST /files`, `GET /files`, `GET /files/{file_id}`, `DELETE /files/{file_id}`
(API.md section 6). Files belong to the device; someone else's id answers 404."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.datastructures import UploadFile

from vedika.api.deps import CurrentSession, ServicesDep
from vedika.api.openapi import multipart_body
from vedika.errors import ServiceUnavailable
from vedika.scale.ratelimit import enforce
from vedika.services import Services
from vedika.sources.library import FileLibrary, IncomingFile, upload_limits

router = APIRouter(tags=["files"])

_UPLOAD_BODY = multipart_body(
    ["files"],
    {
        "files": {
            "type": "array",
            "items": {"type": "string", "format": "binary"},
            "description": "One or more files (PDF, DOCX, TXT, Markdown, HTML, CSV); the "
            "type is read from the content.",
        }
    },
)


def _library(services: Services) -> FileLibrary:
    sources = services.sources
    if sources is None:
        raise ServiceUnavailable("Files are not available on this server.", code="files_disabled")
    return sources.library


@router.post("/files", status_code=201, openapi_extra=_UPLOAD_BODY)
async def upload_files(
    services: ServicesDep, session: CurrentSession, request: Request
) -> dict[str, Any]:
    """Upload one or more files; each is read, split into passages and indexed.

    All or nothing: if one file is refused (413 size or quota, 415 type, 400 empty),
    none is kept. The answer lists the stored files, `status: "ready"`. A device may
    post VEDIKA_RATE_UPLOADS_PER_MINUTE uploads a minute (429 past it).
    """
    library = _library(services)
    # Counted before the body is read, so refused uploads count too and a device over
    # its limit costs neither disk nor a parse worker.
    await enforce(
        services.limiter,
        f"uploads:{session.owner}",
        services.settings.rate_uploads_per_minute,
        60,
        "uploads",
    )
    form = await request.form()
    try:
        uploads = [v for _k, v in form.multi_items() if isinstance(v, UploadFile)]
        library.check_count(len(uploads))
        incoming = [
            IncomingFile(name=u.filename or "file", size=u.size or 0, file=u.file) for u in uploads
        ]
        return {"files": await library.add(session.owner, incoming)}
    finally:
        await form.close()


@router.get("/files")
async def list_files(services: ServicesDep, session: CurrentSession) -> dict[str, Any]:
    """The device's files, newest first, with its usage and the limits."""
    library = _library(services)
    files = await library.list(session.owner)
    count, used = await library.usage(session.owner)
    return {
        "files": files,
        "total": count,
        "used_bytes": used,
        "limits": upload_limits(services.settings),
    }


@router.get("/files/{file_id}")
async def get_file(services: ServicesDep, session: CurrentSession, file_id: str) -> dict[str, Any]:
    return await _library(services).get(session.owner, file_id)


@router.delete("/files/{file_id}", status_code=204)
async def delete_file(services: ServicesDep, session: CurrentSession, file_id: str) -> Response:
    """Delete a file, its passages and its stored bytes. Citations already given keep
    its name and id."""
    await _library(services).delete(session.owner, file_id)
    return Response(status_code=204)
