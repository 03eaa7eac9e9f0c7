"""The passage index: one interface over SQLite FTS5 (BM25) and PostgreSQL full text,
with optional hybrid retrieval when an embeddings endpoint is configured.

Hybrid: the full-text ranking and a cosine ranking are fused by reciprocal rank.
Vectors live in a plain table (`passage_vectors`, float32 bytes): sqlite-vec and
pgvector are not required. Cosine is computed in Python over the candidate set
(the passages of the files in scope, at most `vector_candidates` of them), off the
event loop; that is fine for a person's own files and is the place to plug in an
ANN index later.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncConnection

from vedika.sources.chunking import Passage
from vedika.sources.embeddings import Embedder, EmbeddingsUnavailable, dot, pack, unpack
from vedika.sources.ranking import query_words, rrf
from vedika.store import files as data
from vedika.store.engine import Store

log = structlog.get_logger(__name__)

_COLUMNS = "p.id, p.file_id, f.name AS file_name, p.text, p.page, p.section"
_SQLITE = text(
    f"SELECT {_COLUMNS}, -bm25(passages_fts, 1.0, 0.5, 0.0) AS score "
    "FROM passages_fts JOIN passages p ON p.id = passages_fts.rowid "
    "JOIN files f ON f.id = p.file_id "
    "WHERE passages_fts MATCH :q AND p.device_id = :device AND f.device_id = :device "
    "AND p.file_id IN :ids "
    "ORDER BY score DESC LIMIT :limit"
).bindparams(bindparam("ids", expanding=True))
_POSTGRES = text(
    f"SELECT {_COLUMNS}, ts_rank(p.tsv, q, 1) AS score "
    "FROM passages p JOIN files f ON f.id = p.file_id, to_tsquery('english', :q) q "
    "WHERE p.tsv @@ q AND p.device_id = :device AND f.device_id = :device "
    "AND p.file_id IN :ids "
    "ORDER BY score DESC LIMIT :limit"
).bindparams(bindparam("ids", expanding=True))
_BY_ID = text(
    f"SELECT {_COLUMNS}, 0.0 AS score FROM passages p JOIN files f ON f.id = p.file_id "
    "WHERE p.id IN :pids AND f.device_id = :device"
).bindparams(bindparam("pids", expanding=True))
_FIRST = text(
    f"SELECT {_COLUMNS}, 0.0 AS score FROM passages p JOIN files f ON f.id = p.file_id "
    "WHERE f.device_id = :device AND p.file_id IN :ids AND p.seq < :per_file "
    "ORDER BY p.file_id, p.seq"
).bindparams(bindparam("ids", expanding=True))
_VECTORS = text(
    "SELECT v.passage_id, v.vector FROM passage_vectors v JOIN files f ON f.id = v.file_id "
    "WHERE f.device_id = :device AND v.file_id IN :ids AND v.model = :model LIMIT :cap"
).bindparams(bindparam("ids", expanding=True))


@dataclass(slots=True)
class Hit:
    passage_id: int
    file_id: str
    file_name: str
    text: str
    page: int | None
    section: str | None
    score: float


def _hit(row: Any) -> Hit:
    return Hit(
        passage_id=int(row.id),
        file_id=row.file_id,
        file_name=row.file_name,
        text=row.text,
        page=row.page,
        section=row.section,
        score=float(row.score or 0.0),
    )


def match_query(dialect: str, question: str, device_id: str = "") -> str | None:
    """The question as an OR of its content words, in the database's query syntax.

    On SQLite the device's id is ANDed in as a phrase on the `device_id` column, so FTS5
    scores only that device's passages (the SQL still checks the owner exactly)."""
    found = query_words(question)
    if not found:
        return None
    if dialect == "sqlite":
        terms = " OR ".join(f'"{w}"' for w in found)
        owner = device_id.replace('"', '""')
        return f'({terms}) AND device_id : "{owner}"' if owner else terms
    return " | ".join(found)


class PassageIndex:
    def __init__(
        self, store: Store, embedder: Embedder | None = None, *, vector_candidates: int = 5000
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.vector_candidates = vector_candidates

    @property
    def hybrid(self) -> bool:
        return self.embedder is not None

    async def add(
        self,
        conn: AsyncConnection,
        *,
        file_id: str,
        device_id: str,
        passages: list[Passage],
        vectors: list[list[float]] | None = None,
    ) -> None:
        """Store a file's passages (the full-text index follows) and their vectors."""
        ids = await data.insert_passages(
            conn,
            file_id=file_id,
            device_id=device_id,
            rows=[
                {"seq": p.seq, "page": p.page, "section": p.section, "text": p.text}
                for p in passages
            ],
        )
        if vectors and self.embedder is not None and len(vectors) == len(ids):
            await data.insert_vectors(
                conn,
                rows=[
                    {
                        "passage_id": pid,
                        "file_id": file_id,
                        "model": self.embedder.model,
                        "vector": pack(vec),
                    }
                    for pid, vec in zip(ids, vectors, strict=True)
                ],
            )

    async def embed_passages(self, passages: list[Passage]) -> list[list[float]] | None:
        """Vectors for new passages, or None (no endpoint, or it failed: full text only)."""
        if self.embedder is None or not passages:
            return None
        try:
            return await self.embedder.embed([p.text for p in passages])
        except EmbeddingsUnavailable as exc:
            log.warning("sources.embeddings_failed", error=str(exc))
            return None

    async def search(
        self, *, device_id: str, file_ids: list[str], query: str, limit: int
    ) -> list[Hit]:
        """The best passages of the device's files in `file_ids` for `query`."""
        if not file_ids:
            return []
        qvec = None
        if self.embedder is not None:
            try:
                qvec = (await self.embedder.embed([query]))[0]
            except EmbeddingsUnavailable as exc:
                log.warning("sources.embeddings_failed", error=str(exc))
        pool = limit * 4 if qvec is not None else limit
        async with self.store.read() as conn:
            hits = await self._full_text(conn, device_id, file_ids, query, pool)
            if qvec is None or self.embedder is None:
                return hits[:limit]
            rows = (
                await conn.execute(
                    _VECTORS,
                    {
                        "device": device_id,
                        "ids": file_ids,
                        "model": self.embedder.model,
                        "cap": self.vector_candidates,
                    },
                )
            ).all()
            nearest = await asyncio.to_thread(_nearest, qvec, rows, pool)
            known = {h.passage_id: h for h in hits}
            missing = [pid for pid in nearest if pid not in known]
            if missing:
                for row in (
                    await conn.execute(_BY_ID, {"pids": missing, "device": device_id})
                ).all():
                    known[int(row.id)] = _hit(row)
        fused = rrf([[h.passage_id for h in hits], nearest])
        out = []
        for rank, pid in enumerate(fused[:limit]):
            if pid in known:
                hit = known[pid]
                hit.score = 1.0 / (rank + 1)
                out.append(hit)
        return out

    async def _full_text(
        self, conn: AsyncConnection, device_id: str, file_ids: list[str], query: str, limit: int
    ) -> list[Hit]:
        dialect = conn.dialect.name
        q = match_query(dialect, query, device_id)
        if q is None:
            return []
        stmt = _SQLITE if dialect == "sqlite" else _POSTGRES
        rows = (
            await conn.execute(stmt, {"q": q, "device": device_id, "ids": file_ids, "limit": limit})
        ).all()
        return [_hit(r) for r in rows]

    async def first_passages(
        self, *, device_id: str, file_ids: list[str], per_file: int
    ) -> list[Hit]:
        """The opening passages of each file (for questions like "summarise this")."""
        if not file_ids:
            return []
        async with self.store.read() as conn:
            rows = (
                await conn.execute(
                    _FIRST, {"device": device_id, "ids": file_ids, "per_file": per_file}
                )
            ).all()
        order = {fid: i for i, fid in enumerate(file_ids)}
        hits = [_hit(r) for r in rows]
        hits.sort(key=lambda h: (order.get(h.file_id, 0), h.passage_id))
        return hits


def _nearest(query: list[float], rows: Sequence[Any], k: int) -> list[int]:
    scored = ((dot(query, unpack(row.vector)), int(row.passage_id)) for row in rows)
    return [pid for _score, pid in heapq.nlargest(k, scored)]
