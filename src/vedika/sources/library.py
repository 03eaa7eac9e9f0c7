"""Uploaded files: limits, ownership, storage under server ids, ingestion.

An upload is all or nothing: every limit and every file's type is checked before
anything is parsed, and if any file of the request fails, none is kept. Files are
stored as `<data dir>/files/<id[:2]>/<id>`: the name a person gave is kept only as
text in the database (cleaned of paths, control and bidi characters), never used
as a path, and never served back as a page.

Parsing is bounded by what was sent: each file gets a wall-time budget that grows
with its size (a few seconds for a small file, never above VEDIKA_PARSE_TIMEOUT),
and one device holds at most all but one of the parse workers (`isolation`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import structlog

from vedika.errors import (
    BadRequest,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    UnsupportedMediaType,
    VedikaError,
)
from vedika.ids import uuid7
from vedika.protocol import iso, utcnow
from vedika.settings import Settings
from vedika.sources.chunking import chunk
from vedika.sources.index import PassageIndex
from vedika.sources.isolation import Busy, Isolation
from vedika.sources.parsers import ParseFailure, ParseLimits, detect, parse_path, parsers
from vedika.store import files as data
from vedika.store.engine import Store

log = structlog.get_logger(__name__)

NAME_CHARS = 200
# A parse's wall-time budget: text PDFs read at about 3 s of one core per megabyte,
# so 10 s per megabyte leaves room for a busy machine; the base covers small files.
BUDGET_BASE_SECONDS = 5.0
BUDGET_SECONDS_PER_MB = 10.0


@dataclass(slots=True)
class IncomingFile:
    """One file of a multipart upload (the route adapts Starlette's UploadFile)."""

    name: str
    size: int
    file: BinaryIO


def clean_name(raw: str | None) -> str:
    """A display name: the last path component, without control, format (bidi
    overrides, zero-width) or private-use characters, at most 200 characters with
    its extension kept."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C")
    name = " ".join(name.split()).strip(" .")
    if not name:
        return "file"
    if len(name) > NAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 10:
            name = stem[: NAME_CHARS - len(ext) - 1].rstrip() + "." + ext
        else:
            name = name[:NAME_CHARS]
    return name


def accepted_extensions() -> list[str]:
    return sorted({ext for p in parsers().values() for ext in p.extensions})


def upload_limits(settings: Settings) -> dict[str, Any]:
    """What a client needs to check files before sending them (GET /files, /api/config)."""
    return {
        "max_file_bytes": settings.max_file_bytes,
        "max_files_per_message": settings.max_files_per_message,
        "max_device_files": settings.max_device_files,
        "max_device_file_bytes": settings.max_device_file_bytes,
        "accept": accepted_extensions(),
    }


def file_object(row: Any) -> dict[str, Any]:
    """The API shape of a stored file (API.md section 6)."""
    return {
        "file_id": row.id,
        "name": row.name,
        "size": row.size,
        "content_type": row.content_type,
        "kind": row.kind,
        "pages": row.pages,
        "chunks": row.chunks,
        "status": row.status,
        "created_at": iso(row.created_at),
    }


_FAILURES: dict[str, tuple[type[VedikaError], str]] = {
    "unsupported": (UnsupportedMediaType, "unsupported_file_type"),
    "empty": (BadRequest, "empty_file"),
    "no_text": (UnsupportedMediaType, "no_text"),
    "bomb": (PayloadTooLarge, "decompression_bomb"),
    "too_complex": (PayloadTooLarge, "file_too_complex"),
    "timeout": (PayloadTooLarge, "file_too_complex"),
    "memory": (PayloadTooLarge, "file_too_complex"),
    "unreadable": (UnsupportedMediaType, "unreadable_file"),
}


def parse_budget(size: int, ceiling: float) -> float:
    """Seconds a file of `size` bytes may take to read: small file, small budget, so
    a tiny hostile file cannot hold a worker for the whole VEDIKA_PARSE_TIMEOUT."""
    return min(ceiling, round(BUDGET_BASE_SECONDS + BUDGET_SECONDS_PER_MB * size / 1e6, 1))


def busy_error(exc: Busy) -> RateLimited:
    retry = max(1, round(exc.waited / 4))
    return RateLimited(
        f"Your other files are still being read (waited {exc.waited:g} s); "
        f"please try again in {retry} seconds.",
        code="uploads_busy",
        headers={"Retry-After": str(retry)},
        details={"retry_after": retry},
    )


def failure_error(name: str, exc: ParseFailure) -> VedikaError:
    cls, code = _FAILURES.get(exc.code, (UnsupportedMediaType, "unreadable_file"))
    return cls(f"{name}: {exc.message}", code=code, details={"file": name})


@dataclass(slots=True)
class _Staged:
    id: str
    name: str
    size: int
    path: Path
    sha256: str
    kind: str = ""


class FileLibrary:
    def __init__(
        self, settings: Settings, store: Store, index: PassageIndex, isolation: Isolation
    ) -> None:
        self.settings = settings
        self.store = store
        self.index = index
        self.isolation = isolation
        self.root = settings.data_dir / "files"
        self.limits = ParseLimits()

    def path_for(self, file_id: str) -> Path:
        return self.root / file_id[:2] / file_id

    # ------------------------------------------------------------ limits

    def check_count(self, n: int) -> None:
        if n > self.settings.max_files_per_message:
            raise PayloadTooLarge(
                f"That is {n} files; at most {self.settings.max_files_per_message} can be "
                "attached at once.",
                code="too_many_files",
            )

    async def _check_quota(self, device_id: str, count: int, size: int) -> None:
        async with self.store.read() as conn:
            have, used = await data.device_usage(conn, device_id=device_id)
        s = self.settings
        if have + count > s.max_device_files:
            raise PayloadTooLarge(
                f"You already keep {have} files; the limit is {s.max_device_files}. "
                "Delete some to attach more.",
                code="storage_quota_exceeded",
            )
        if used + size > s.max_device_file_bytes:
            raise PayloadTooLarge(
                f"Your files would take {used + size:,} bytes; the limit is "
                f"{s.max_device_file_bytes:,}. Delete some to attach more.",
                code="storage_quota_exceeded",
            )

    # ------------------------------------------------------------ upload

    async def add(self, device_id: str, incoming: list[IncomingFile]) -> list[dict[str, Any]]:
        if not incoming:
            raise BadRequest(
                "No file was sent: post them as multipart/form-data, field name 'files'.",
                code="no_files",
            )
        self.check_count(len(incoming))
        limit = self.settings.max_file_bytes
        for item in incoming:
            name = clean_name(item.name)
            if item.size == 0:
                raise BadRequest(f"{name} is empty.", code="empty_file", details={"file": name})
            if item.size > limit:
                raise PayloadTooLarge(
                    f"{name} is {item.size:,} bytes; the limit is {limit:,} bytes per file.",
                    code="file_too_large",
                    details={"file": name},
                )
        await self._check_quota(device_id, len(incoming), sum(i.size for i in incoming))
        staged: list[_Staged] = []
        try:
            for item in incoming:
                staged.append(await asyncio.to_thread(self._store_bytes, item))
            for entry in staged:
                try:
                    entry.kind = await asyncio.to_thread(detect, entry.path, entry.name)
                except ParseFailure as exc:
                    raise failure_error(entry.name, exc) from None
            return await self._ingest(device_id, staged)
        except BaseException:
            for entry in staged:
                entry.path.unlink(missing_ok=True)
            raise

    def _store_bytes(self, item: IncomingFile) -> _Staged:
        file_id = uuid7()
        path = self.path_for(file_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        item.file.seek(0)
        with path.open("xb") as out:
            while block := item.file.read(1024 * 1024):
                size += len(block)
                if size > self.settings.max_file_bytes:
                    break
                digest.update(block)
                out.write(block)
        if size > self.settings.max_file_bytes:
            path.unlink(missing_ok=True)
            raise PayloadTooLarge(
                f"{clean_name(item.name)} is larger than {self.settings.max_file_bytes:,} bytes.",
                code="file_too_large",
            )
        return _Staged(file_id, clean_name(item.name), size, path, digest.hexdigest())

    async def _ingest(self, device_id: str, staged: list[_Staged]) -> list[dict[str, Any]]:
        prepared = []
        for entry in staged:
            try:
                doc = await self.isolation.run(
                    parse_path,
                    entry.path,
                    entry.kind,
                    self.limits,
                    timeout=parse_budget(entry.size, self.settings.parse_timeout),
                    owner=device_id,
                )
            except ParseFailure as exc:
                raise failure_error(entry.name, exc) from None
            except Busy as exc:
                raise busy_error(exc) from None
            passages = chunk(
                doc.sections, size=self.settings.chunk_chars, overlap=self.settings.chunk_overlap
            )
            if not passages:
                raise BadRequest(
                    f"{entry.name} has no text in it.",
                    code="empty_file",
                    details={"file": entry.name},
                )
            vectors = await self.index.embed_passages(passages)
            prepared.append((entry, doc, passages, vectors))
        now = utcnow()
        async with self.store.tx() as conn:
            for entry, doc, passages, vectors in prepared:
                await data.insert_file(
                    conn,
                    id=entry.id,
                    device_id=device_id,
                    name=entry.name,
                    size=entry.size,
                    kind=entry.kind,
                    content_type=doc.content_type,
                    pages=doc.pages,
                    chunks=len(passages),
                    chars=doc.chars,
                    status="ready",
                    sha256=entry.sha256,
                    created_at=now,
                )
                await self.index.add(
                    conn,
                    file_id=entry.id,
                    device_id=device_id,
                    passages=passages,
                    vectors=vectors,
                )
            rows = await data.owned_files(
                conn, device_id=device_id, file_ids=[e.id for e in staged]
            )
        by_id = {r.id: r for r in rows}
        log.info("files.added", count=len(staged), kinds=[e.kind for e in staged])
        return [file_object(by_id[e.id]) for e in staged]

    # ------------------------------------------------------------ the rest

    async def list(self, device_id: str) -> list[dict[str, Any]]:
        async with self.store.read() as conn:
            rows = await data.list_files(conn, device_id=device_id)
        return [file_object(r) for r in rows]

    async def get(self, device_id: str, file_id: str) -> dict[str, Any]:
        async with self.store.read() as conn:
            row = await data.get_file(conn, file_id=file_id, device_id=device_id)
        if row is None:
            raise NotFound("There is no file with that id.", code="file_not_found")
        return file_object(row)

    async def usage(self, device_id: str) -> tuple[int, int]:
        async with self.store.read() as conn:
            return await data.device_usage(conn, device_id=device_id)

    async def delete(self, device_id: str, file_id: str) -> None:
        async with self.store.tx() as conn:
            ok = await data.delete_file(conn, file_id=file_id, device_id=device_id)
        if not ok:
            raise NotFound("There is no file with that id.", code="file_not_found")
        with contextlib.suppress(OSError):
            await asyncio.to_thread(self.path_for(file_id).unlink, True)
