"""A serving process freezes what start-up built (vedika.heap); an app built in a
process that does other things (a test suite) leaves the collector alone."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

from vedika.app import create_app
from vedika.settings import load_settings
from vedika.store.engine import migrate


async def _up_and_down(tmp_path: Path, own_process: bool) -> int:
    settings = load_settings(
        VEDIKA_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/v.db",
        VEDIKA_DATA_DIR=str(tmp_path),
        VEDIKA_OLLAMA_AUTODETECT="false",
    )
    await asyncio.to_thread(migrate, settings.effective_database_url)  # it runs a loop
    app = create_app(settings, own_process=own_process)
    async with app.router.lifespan_context(app):
        return gc.get_freeze_count()


async def test_a_serving_process_freezes_its_heap_once_up(tmp_path: Path) -> None:
    gc.unfreeze()
    try:
        assert await _up_and_down(tmp_path, own_process=False) == 0
        frozen = await _up_and_down(tmp_path, own_process=True)
        # Everything start-up left alive: the libraries' modules and more, not a handful.
        assert frozen > 10_000, frozen
    finally:
        gc.unfreeze()
