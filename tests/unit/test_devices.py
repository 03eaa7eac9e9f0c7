"""vedika.identity.devices.bind on a real, migrated SQLite database: which device a
new session gets for each kind of proof, and the trusted legacy mode."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from vedika.identity.devices import Binding, Proof, bind, cookie_value
from vedika.ids import account_owner, is_account_owner
from vedika.store.engine import Store, make_engine, migrate


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    url = f"sqlite+aiosqlite:///{tmp_path}/d.db"
    await asyncio.to_thread(migrate, url)  # alembic runs its own event loop
    s = Store(make_engine(url))
    yield s
    await s.close()


async def _bind(store: Store, proof: Proof, trust_ids: bool = False) -> Binding:
    async with store.tx() as conn:
        return await bind(conn, proof, trust_ids=trust_ids)


async def test_each_proof(store: Store) -> None:
    first = await _bind(store, Proof(asked="device_mine_1"))
    assert first.device_id == "device_mine_1" and first.issued and first.secret

    bare = await _bind(store, Proof(asked="device_mine_1"))
    assert bare.device_id.startswith("dev_") and bare.client_device_id == "device_mine_1"

    by_secret = await _bind(store, Proof(asked="device_mine_1", secret=first.secret))
    assert by_secret.device_id == "device_mine_1" and not by_secret.issued

    assert first.secret is not None
    cookie = cookie_value("device_mine_1", first.secret)
    assert (await _bind(store, Proof(cookie=cookie))).device_id == "device_mine_1"
    # another device's cookie is no proof for this one
    other = await _bind(store, Proof())
    assert other.secret is not None
    wrong = await _bind(
        store, Proof(asked="device_mine_1", cookie=cookie_value(other.device_id, other.secret))
    )
    assert wrong.device_id not in ("device_mine_1", other.device_id)

    live = await _bind(store, Proof(asked="device_mine_1", live_device="device_mine_1"))
    assert live.device_id == "device_mine_1" and not live.issued
    forged = await _bind(store, Proof(asked="device_mine_1", live_device="someone_else"))
    assert forged.device_id != "device_mine_1"


async def test_trusted_legacy_mode_rebinds_by_id_alone(store: Store) -> None:
    await _bind(store, Proof(asked="device_legacy_1"))
    trusted = await _bind(store, Proof(asked="device_legacy_1"), trust_ids=True)
    assert trusted.device_id == "device_legacy_1"
    assert (await _bind(store, Proof(asked="device_legacy_1"))).device_id != "device_legacy_1"


async def test_a_cookie_cannot_name_an_accounts_owner_key(store: Store) -> None:
    """An account's things are stored under `account@<id>`; a device of that name would
    own them. A forged device cookie naming one gets a new, unrelated device."""
    forged = cookie_value(account_owner("0190aaaa-0000-7000-8000-000000000000"), "s" * 43)
    got = await _bind(store, Proof(cookie=forged))
    assert got.device_id.startswith("dev_") and got.issued
    assert not is_account_owner(got.device_id)
