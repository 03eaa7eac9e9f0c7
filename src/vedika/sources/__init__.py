"""Sources: attached files and web search, retrieved and cited (docs/sources.md).

    parsers/      file type by content, one parser per type, run in a capped child process
    chunking      overlapping passages that keep their page or section
    index         full-text passage index (SQLite FTS5 / PostgreSQL tsvector), optional vectors
    netpolicy     which addresses a URL may reach, in every spelling
    fetcher       the one safe URL fetcher every URL in Vedika goes through
    search/       web search providers behind a registry, cached per query
    web           search -> fetch the top pages concurrently -> main text
    library       uploads: limits, ownership, storage under server ids, ingestion
    retrieval     the passages for one turn, numbered, with citations and prompt context
    service       the bundle the app holds (`Services.sources`)
    routes        POST/GET/DELETE /files

This package imports nothing from `vedika.chat` or `vedika.models`: they import it.
"""
