"""The sources of one turn: the best passages of its files and of the web, numbered.

Which files: the message's attachments; else the files attached earlier in the
conversation; else (when the message asks for the `files` source) every file of the
device. Only the device's own files are ever read. Files and web are searched
concurrently; with both, each gets half of VEDIKA_SOURCE_PASSAGES and gives what it
does not use to the other. Files come first in the numbering, then web pages.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from vedika.protocol import Citation
from vedika.sources.chunking import chunk
from vedika.sources.citations import SOURCE_CHARS, Source, prompt_context
from vedika.sources.index import Hit, PassageIndex
from vedika.sources.parsers.base import Section
from vedika.sources.ranking import BM25, best_window, rrf, shorten
from vedika.sources.web import WebDocument, WebSearch
from vedika.store import files as files_data
from vedika.store.engine import Store

WEB_PASSAGE_CHARS = 800


@dataclass(slots=True)
class Retrieved:
    sources: list[Source] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. "web search is not configured"

    @property
    def citations(self) -> list[Citation]:
        return [s.citation() for s in self.sources]

    def context(self) -> str:
        return prompt_context(self.sources) if self.sources else ""


class Retriever:
    def __init__(
        self, *, store: Store, index: PassageIndex, web: WebSearch | None, passages: int
    ) -> None:
        self.store = store
        self.index = index
        self.web = web
        self.passages = passages

    async def retrieve(
        self,
        *,
        device_id: str,
        conversation_id: str,
        question: str,
        sources: list[str],
        attachments: list[str],
        passages: int | None = None,
        pages: int | None = None,
    ) -> Retrieved:
        """`passages` overrides VEDIKA_SOURCE_PASSAGES, `pages` the number of web pages
        read (VEDIKA_SEARCH_RESULTS); research and agent tools use both."""
        use_files = "files" in sources or bool(attachments)
        use_web = "web" in sources
        out = Retrieved()
        if use_web and self.web is None:
            out.notes.append("web search is not configured on this server")
        want = passages or self.passages
        files_task = (
            self._files(device_id, conversation_id, question, attachments, want)
            if use_files
            else _nothing()
        )
        web_task = (
            self._web(question, want, pages) if use_web and self.web is not None else _nothing()
        )
        from_files, from_web = await asyncio.gather(files_task, web_task)
        n_files = len(from_files)
        if from_files and from_web:
            half = (want + 1) // 2
            n_files = min(len(from_files), max(half, want - len(from_web)))
        chosen = from_files[:n_files] + from_web[: want - n_files]
        for i, source in enumerate(chosen, 1):
            source.index = i
        out.sources = chosen
        return out

    async def _file_scope(
        self, device_id: str, conversation_id: str, attachments: list[str]
    ) -> tuple[list[str], bool]:
        """(file ids, focused): focused when the person pointed at these files."""
        async with self.store.read() as conn:
            wanted = attachments or await files_data.conversation_attachments(
                conn, conversation_id=conversation_id
            )
            if wanted:
                owned = {
                    r.id
                    for r in await files_data.owned_files(
                        conn, device_id=device_id, file_ids=wanted
                    )
                }
                return [f for f in wanted if f in owned], True
            rows = await files_data.list_files(conn, device_id=device_id)
        return [r.id for r in rows], False

    async def _files(
        self, device_id: str, conversation_id: str, question: str, attachments: list[str], k: int
    ) -> list[Source]:
        file_ids, focused = await self._file_scope(device_id, conversation_id, attachments)
        if not file_ids:
            return []
        hits = await self.index.search(
            device_id=device_id, file_ids=file_ids, query=question, limit=k * 2
        )
        if focused and not hits:  # "summarise this": the opening passages
            seen = {h.passage_id for h in hits}
            opening = await self.index.first_passages(
                device_id=device_id, file_ids=file_ids, per_file=max(1, k // len(file_ids))
            )
            hits += [h for h in opening if h.passage_id not in seen]
        return _group_hits(hits, question, k)

    async def _web(self, question: str, k: int, pages: int | None = None) -> list[Source]:
        assert self.web is not None
        docs = await self.web.gather(question, limit=pages)
        return _rank_web(docs, question, k)


async def _nothing() -> list[Source]:
    return []


def _group_hits(hits: list[Hit], question: str, k: int) -> list[Source]:
    """One source per (file, page, section); up to two passages of it, best first."""
    groups: dict[tuple[str, int | None, str | None], list[Hit]] = {}
    for hit in hits:
        key = (hit.file_id, hit.page, hit.section)
        if key in groups or len(groups) < k:
            groups.setdefault(key, []).append(hit)
    out: list[Source] = []
    for (file_id, page, section), group in groups.items():
        parts = sorted(group[:2], key=lambda h: h.passage_id)
        text = "\n…\n".join(h.text for h in parts)[:SOURCE_CHARS]
        out.append(
            Source(
                index=0,
                title=group[0].file_name,
                text=text,
                snippet=best_window(group[0].text, question),
                file_id=file_id,
                page=page,
                section=section,
            )
        )
    return out


def _rank_web(docs: list[WebDocument], question: str, k: int) -> list[Source]:
    """The pages whose best passage matches best, fused with the search engine's order;
    each page gives its best passage or two."""
    if not docs:
        return []
    pieces: list[tuple[int, str]] = []
    for i, doc in enumerate(docs):
        for p in chunk([Section(doc.text)], size=WEB_PASSAGE_CHARS, overlap=100)[:60]:
            pieces.append((i, p.text))
    scores = BM25([text for _i, text in pieces]).scores(question) if pieces else []
    best: dict[int, list[tuple[float, str]]] = {}
    for (i, text), score in zip(pieces, scores, strict=True):
        best.setdefault(i, []).append((score, text))
    by_match = sorted(best, key=lambda i: -max(s for s, _t in best[i]))
    by_rank = sorted(range(len(docs)), key=lambda i: docs[i].rank)
    out: list[Source] = []
    for i in rrf([by_match, by_rank])[:k]:
        doc = docs[i]
        top = sorted(best.get(i, [(0.0, doc.text)]), key=lambda st: -st[0])[:2]
        text = "\n…\n".join(t for _s, t in top)
        snippet = best_window(top[0][1], question) if doc.fetched else shorten(doc.snippet, 280)
        out.append(
            Source(
                index=0,
                title=doc.title,
                text=text[:SOURCE_CHARS],
                snippet=snippet or shorten(doc.snippet, 280),
                url=doc.url,
                site=doc.site,
            )
        )
    return out
