"""The built-in tools: web_search, fetch_url, read_file, calculator, current_time.

They register through the same decorator as an operator's tools. Pages and URLs go
through the safe fetcher (docs/sources.md), files are only ever the asking device's
own, and everything a tool finds on the web or in a file becomes a numbered source
of the answer, so the model can cite it as [n].
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from vedika.modes.tools.base import Tool, ToolContext, ToolError, register_tool
from vedika.modes.tools.calculator import CalcError, evaluate, format_number
from vedika.netpolicy import FetchError
from vedika.settings import Settings
from vedika.sources.citations import Source
from vedika.sources.index import Hit
from vedika.sources.parsers.base import ParseFailure
from vedika.sources.parsers.html import extract_page
from vedika.sources.ranking import best_window, shorten
from vedika.sources.service import SourcesService
from vedika.sources.web import site_of
from vedika.store import files as files_data

SEARCH_PASSAGES = 5
PAGE_CHARS = 6000
EXTRACT_TIMEOUT = 10.0


def _text_arg(args: dict[str, Any], name: str, limit: int = 500) -> str:
    value = args.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ToolError(f"The argument {name!r} (a non-empty string) is required.")
    return value.strip()[:limit]


@register_tool
class WebSearch(Tool):
    name = "web_search"
    description = (
        "Search the web. Returns the best passages of the top pages, each numbered [n] "
        "so you can cite it."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"query": {"type": "string", "description": "What to search for."}},
        "required": ["query"],
    }

    def available(self, settings: Settings, sources: SourcesService | None) -> bool:
        return sources is not None and sources.web is not None

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> str:
        query = _text_arg(args, "query", 400)
        if ctx.sources is None or ctx.sources.web is None:
            raise ToolError("Web search is not configured on this server.")
        found = await ctx.sources.retrieve(
            device_id=ctx.device_id,
            conversation_id=ctx.conversation_id,
            question=query,
            sources=["web"],
            attachments=[],
            passages=SEARCH_PASSAGES,
        )
        if not found.sources:
            return f"No results for {query!r}."
        blocks = []
        for source in found.sources:
            n = ctx.cite(source)
            blocks.append(f"[{n}] {source.title} ({source.site})\nURL: {source.url}\n{source.text}")
        return "\n\n".join(blocks)


@register_tool
class FetchUrl(Tool):
    name = "fetch_url"
    description = (
        "Read a web page (http or https) and return its main text. Private and local "
        "addresses are refused."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"url": {"type": "string", "description": "The page's full URL."}},
        "required": ["url"],
    }

    def available(self, settings: Settings, sources: SourcesService | None) -> bool:
        return sources is not None

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> str:
        url = _text_arg(args, "url", 2048)
        if ctx.sources is None:
            raise ToolError("Fetching pages is not available on this server.")
        try:
            page = await ctx.sources.fetcher.fetch(url)
        except FetchError as exc:  # Blocked is a FetchError too
            raise ToolError(str(exc)) from None
        title: str | None = None
        if page.content_type == "text/plain":
            text = page.text()[:200_000]
        else:
            try:
                title, text = await ctx.sources.isolation.run(
                    extract_page, page.text(), page.url, timeout=EXTRACT_TIMEOUT
                )
            except ParseFailure as exc:
                raise ToolError(f"The page could not be read: {exc.message}") from None
        text = (text or "").strip()
        if not text:
            raise ToolError("The page has no readable text.")
        source = Source(
            index=0,
            title=title or page.url,
            text=text[:1600],
            snippet=shorten(text, 280),
            url=page.url,
            site=site_of(page.url),
        )
        n = ctx.cite(source)
        return f"[{n}] {source.title}\nURL: {page.url}\n\n{text[:PAGE_CHARS]}"


@register_tool
class ReadFile(Tool):
    name = "read_file"
    description = (
        "Read one of the user's attached files (by file_id or name). With a query, the "
        "passages that best match it; without, the opening passages."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "file_id": {"type": "string", "description": "The file's id (or its name)."},
            "query": {"type": "string", "description": "What to look for in the file."},
        },
        "required": ["file_id"],
    }

    def available(self, settings: Settings, sources: SourcesService | None) -> bool:
        return sources is not None

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> str:
        wanted = _text_arg(args, "file_id", 300)
        raw = args.get("query")
        query = raw if isinstance(raw, str) else ""
        if ctx.sources is None:
            raise ToolError("Files are not available on this server.")
        async with ctx.store.read() as conn:
            row = await files_data.get_file(conn, file_id=wanted, device_id=ctx.device_id)
            if row is None:  # perhaps a name: only among this device's files
                rows = await files_data.list_files(conn, device_id=ctx.device_id)
                row = next((r for r in rows if r.name.lower() == wanted.lower()), None)
        if row is None:
            raise ToolError(f"There is no attached file called {wanted!r}.")
        index = ctx.sources.index
        hits: list[Hit] = []
        if query.strip():
            hits = await index.search(
                device_id=ctx.device_id, file_ids=[row.id], query=query[:400], limit=4
            )
        if not hits:
            hits = await index.first_passages(
                device_id=ctx.device_id, file_ids=[row.id], per_file=4
            )
        if not hits:
            raise ToolError(f"{row.name} has no readable text.")
        blocks = []
        for hit in hits:
            source = Source(
                index=0,
                title=row.name,
                text=hit.text,
                snippet=best_window(hit.text, query) if query else shorten(hit.text, 280),
                file_id=row.id,
                page=hit.page,
                section=hit.section,
            )
            n = ctx.cite(source)
            where = f", page {hit.page}" if hit.page is not None else ""
            blocks.append(f"[{n}] {row.name}{where}\n{hit.text}")
        return "\n\n".join(blocks)


@register_tool
class Calculator(Tool):
    name = "calculator"
    description = (
        "Compute an arithmetic expression exactly: + - * / // % ** (or ^), parentheses, "
        "pi, e, and sqrt, log, ln, exp, sin, cos, tan, abs, round, floor, ceil, min, max, "
        "factorial."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"expression": {"type": "string", "description": "e.g. (17 * 3) ^ 2"}},
        "required": ["expression"],
    }

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> str:
        expression = _text_arg(args, "expression", 1000)
        try:
            value = evaluate(expression)
        except CalcError as exc:
            raise ToolError(str(exc)) from None
        return f"{expression} = {format_number(value)}"


@register_tool
class CurrentTime(Tool):
    name = "current_time"
    description = "The current date and time, in UTC or in a given IANA time zone."
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "timezone": {"type": "string", "description": "e.g. Europe/Paris (default UTC)"}
        },
    }

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> str:
        raw = args.get("timezone")
        name = (raw if isinstance(raw, str) else "").strip()[:64] or "UTC"
        try:
            zone = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ToolError(f"{name!r} is not a time zone name like Europe/Paris.") from None
        now = datetime.now(zone)
        return f"{now.strftime('%A %d %B %Y, %H:%M:%S')} ({name}, UTC{now.strftime('%z')})"
