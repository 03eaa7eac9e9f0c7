"""The access matrix with accounts: every id-bearing call x {the owner, the owner's other
device (same account), another account, an anonymous device, a signed-out session}.

The owner and the account's other device get their data; another account and an
anonymous device get 404 (never the data, never a hint it exists); a session that was
signed out gets 401. The calls that only exist for an account (`/auth/sessions`,
`/auth/export`, `/auth/account`) answer an anonymous device 401 (`not_signed_in`): there
is nothing of anyone's in them. Nothing the refused callers tried changes anything.
Against real `vedika serve` processes on SQLite and PostgreSQL (docs/security.md,
"Access matrix").
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import (
    DATABASES,
    NO_SIGN_IN_LIMITS,
    a_database,
)
from tests.support.client import Api, Socket, assert_invariants, chunks_of
from tests.support.server import VedikaServer, serving

PASSWORD = "correct horse battery staple"
INTRUDER_PASSWORD = "another horse, another staple"
SECRET = "the secret plan is purple"
ADMIN_EMAIL = "admin@example.org"
FILE_TEXT = b"# Otters\n\nThe den is under the willow.\n"
WHO = ["owner", "same_account", "other_account", "anonymous", "signed_out"]
REFUSED = {"other_account": 404, "anonymous": 404, "signed_out": 401}


@pytest.fixture(scope="module", params=DATABASES)
def srv(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, upstream, models_file
) -> Iterator[VedikaServer]:
    data_dir = tmp_path_factory.mktemp(f"access-accounts-{request.param}")
    with (
        a_database(request.param, data_dir) as url,
        serving(
            data_dir,
            upstream,
            models_file,
            db=url,
            VEDIKA_RATE_MESSAGES_PER_MINUTE="0",
            VEDIKA_ACCOUNT_DAILY_CREDITS="1000",
            VEDIKA_ADMIN_EMAILS=ADMIN_EMAIL,
            **NO_SIGN_IN_LIMITS,
        ) as server,
    ):
        yield server


def new_email(tag: str) -> str:
    return f"{tag}-{time.monotonic_ns()}@example.org"


async def sign(api: Api, path: str, **body: Any) -> dict[str, Any]:
    r = await api.http.post(path, json=body)
    assert r.status_code in (200, 201), r.text
    out: dict[str, Any] = r.json()
    api.session_id = out["session_id"]
    api.http.headers["Authorization"] = f"Bearer {api.session_id}"
    return out


@dataclass
class World:
    owner: Api
    same_account: Api
    other_account: Api
    anonymous: Api
    signed_out: Api
    email: str
    cid: str  # a conversation with a finished answer
    mid: str  # that answer
    file_id: str
    spare_handle: str  # a session of the account that may be revoked
    key_id: str  # an API key of the account
    account_id: str

    def caller(self, who: str) -> Api:
        return getattr(self, who)  # type: ignore[no-any-return]


@pytest.fixture
async def world(srv: VedikaServer) -> AsyncIterator[World]:
    apis = [Api(srv.url) for _ in range(6)]
    for api in apis:
        await api.__aenter__()
    owner, same, other, anonymous, signed_out, spare = apis
    try:
        email = new_email("owner")
        await sign(owner, "/auth/register", email=email, password=PASSWORD)
        await sign(same, "/auth/login", email=email, password=PASSWORD)
        await sign(spare, "/auth/login", email=email, password=PASSWORD)
        await sign(other, "/auth/register", email=new_email("other"), password=INTRUDER_PASSWORD)
        await sign(signed_out, "/auth/login", email=email, password=PASSWORD)
        out = await signed_out.http.post("/auth/logout")
        assert out.status_code == 200, out.text  # signed_out keeps sending the ended session

        answered = await owner.http.post("/ai/chat", json={"message": SECRET})
        assert answered.status_code == 200, answered.text
        uploaded = await owner.http.post(
            "/files", files=[("files", ("otters.md", FILE_TEXT, "text/markdown"))]
        )
        assert uploaded.status_code == 201, uploaded.text
        sessions = (await owner.http.get("/auth/sessions")).json()["sessions"]
        spare_handle = next(s["id"] for s in sessions if s["device_id"] == spare.device_id)
        key = await owner.http.post("/auth/api-keys", json={"name": "matrix"})
        assert key.status_code == 201, key.text
        me = (await owner.http.get("/auth/me")).json()
        yield World(
            owner=owner,
            same_account=same,
            other_account=other,
            anonymous=anonymous,
            signed_out=signed_out,
            email=email,
            cid=answered.json()["conversation_id"],
            mid=answered.json()["message_id"],
            file_id=uploaded.json()["files"][0]["file_id"],
            spare_handle=spare_handle,
            key_id=key.json()["id"],
            account_id=me["account"]["account_id"],
        )
    finally:
        for api in apis:
            await api.__aexit__()


def no_secret(r: httpx.Response) -> None:
    assert "purple" not in r.text and "willow" not in r.text, r.text


def expect(who: str, r: httpx.Response, ok: int | tuple[int, ...] = 200) -> None:
    """The owner and the account's other device: `ok`; everyone else: REFUSED[who], in
    the error envelope, without the data."""
    call = f"{r.request.method} {r.request.url.path}"
    if who in REFUSED:
        assert r.status_code == REFUSED[who], (who, call, r.status_code, r.text)
        assert set(r.json()) >= {"error", "message", "status_code"}, r.text
        no_secret(r)
    else:
        allowed = ok if isinstance(ok, tuple) else (ok,)
        assert r.status_code in allowed, (who, call, r.status_code, r.text)


async def start_slow(owner: Api) -> dict[str, Any]:
    """An answer that streams for several seconds (fake-slow: 200 ms a token)."""
    r = await owner.http.post(
        "/ai/chat/start", json={"message": "a long story about the sea", "model_id": "fake-slow"}
    )
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize("who", WHO)
async def test_rest_matrix(world: World, who: str) -> None:
    h = world.caller(who).http
    cid, mid, fid = world.cid, world.mid, world.file_id

    r = await h.get(f"/ai/conversations/{cid}")
    expect(who, r)
    if who not in REFUSED:
        assert r.json()["messages"][0]["content"] == SECRET
    expect(who, await h.patch(f"/ai/conversations/{cid}", json={"title": f"by {who}"}))
    r = await h.get(f"/ai/chat/stream/{mid}")  # the finished answer, replayed
    expect(who, r)
    expect(who, await h.post("/ai/chat/stop", json={"message_id": mid}))
    expect(who, await h.post("/ai/chat/stop", json={"conversation_id": cid}))
    r = await h.post("/ai/chat", json={"message": "and more", "conversation_id": cid})
    expect(who, r)
    r = await h.post("/ai/chat/start", json={"message": "again", "conversation_id": cid})
    expect(who, r, 201)
    if who not in REFUSED:
        await world.owner.wait_status(cid, r.json()["message_id"])
    r = await h.get(f"/files/{fid}")
    expect(who, r)
    if who not in REFUSED:
        assert r.json()["file_id"] == fid

    # A live answer of the owner: stopped by the account's devices only.
    live = await start_slow(world.owner)
    r = await h.post("/ai/chat/stop", json={"message_id": live["message_id"]})
    expect(who, r)
    if who in REFUSED:
        await world.owner.http.post("/ai/chat/stop", json={"message_id": live["message_id"]})
    else:
        assert r.json()["stopped"] is True
    await world.owner.wait_status(live["conversation_id"], live["message_id"])

    # Listing shows the account's things to its devices, nothing to anyone else.
    listing = await h.get("/ai/conversations")
    files = await h.get("/files")
    if who == "signed_out":
        assert listing.status_code == 401 and files.status_code == 401
    elif who in REFUSED:
        assert listing.json()["conversations"] == [] and files.json()["files"] == []
    else:
        assert cid in {c["conversation_id"] for c in listing.json()["conversations"]}
        assert fid in {f["file_id"] for f in files.json()["files"]}

    # Export, share and branch (issue 18): the account's devices only.
    r = await h.get(f"/ai/conversations/{cid}/export", params={"format": "json"})
    expect(who, r)
    if who not in REFUSED:
        assert SECRET in r.text
    shared = await h.post(f"/ai/conversations/{cid}/share", json={})
    expect(who, shared, (200, 201))
    expect(who, await h.get(f"/ai/conversations/{cid}/share"))
    expect(who, await h.post(f"/ai/conversations/{cid}/active", json={"message_id": mid}))
    expect(who, await h.delete(f"/ai/conversations/{cid}/share"))
    if who not in REFUSED:  # revoked: its public page says so, to anyone
        gone = await world.anonymous.http.get(f"/shared/{shared.json()['share_id']}")
        assert gone.status_code == 410
    else:
        assert (await world.owner.http.get(f"/ai/conversations/{cid}/share")).status_code == 404

    # The destructive calls last.
    expect(who, await h.delete(f"/files/{fid}"), 204)
    expect(who, await h.delete(f"/ai/conversations/{cid}"))

    survived = await world.owner.http.get(f"/ai/conversations/{cid}")
    kept_file = await world.owner.http.get(f"/files/{fid}")
    if who in REFUSED:  # nothing changed
        assert survived.status_code == 200 and kept_file.status_code == 200
        conv = survived.json()
        assert conv["title"] != f"by {who}" and conv["messages"][0]["content"] == SECRET
        assert all(m["content"] != "and more" for m in conv["messages"])
        assert all(m["content"] != "again" for m in conv["messages"])
    else:
        assert survived.status_code == 404 and kept_file.status_code == 404


@pytest.mark.parametrize("who", WHO)
async def test_account_calls_matrix(world: World, who: str) -> None:
    h = world.caller(who).http
    account_only = {"anonymous": 401, "signed_out": 401}

    me = await h.get("/auth/me")
    if who in account_only:
        code = "not_signed_in" if who == "anonymous" else "session_expired"
        assert me.status_code == 401 and me.json()["error"] == code, me.text
    elif who == "other_account":
        assert me.status_code == 200 and me.json()["account"]["email"] != world.email
    else:
        assert me.status_code == 200 and me.json()["account"]["email"] == world.email

    exported = await h.get("/auth/export")
    if who in account_only:
        assert exported.status_code == 401, exported.text
    elif who == "other_account":
        assert exported.status_code == 200
        assert world.cid not in exported.text and world.file_id not in exported.text
        no_secret(exported)
    else:
        assert exported.status_code == 200 and "purple" in exported.text
        assert world.cid in exported.text and world.file_id in exported.text

    listed = await h.get("/auth/sessions")
    if who in account_only:
        assert listed.status_code == 401
    elif who == "other_account":
        assert world.spare_handle not in listed.text
    else:
        assert world.spare_handle in listed.text

    revoked = await h.delete(f"/auth/sessions/{world.spare_handle}")
    if who in account_only:
        assert revoked.status_code == 401, revoked.text
    elif who == "other_account":
        assert revoked.status_code == 404 and revoked.json()["error"] == "session_not_found"
    else:
        assert revoked.status_code == 200 and revoked.json() == {"revoked": 1, "current": False}
    spare_listed = (await world.owner.http.get("/auth/sessions")).text
    assert (world.spare_handle in spare_listed) == (who not in ("owner", "same_account"))

    keys = await h.get("/auth/api-keys")
    revoked_key = await h.delete(f"/auth/api-keys/{world.key_id}")
    if who in account_only:
        assert keys.status_code == 401 and revoked_key.status_code == 401, revoked_key.text
    elif who == "other_account":
        assert world.key_id not in keys.text
        assert revoked_key.status_code == 404, revoked_key.text
        assert revoked_key.json()["error"] == "api_key_not_found"
    else:
        assert world.key_id in keys.text
        assert revoked_key.status_code == 200 and revoked_key.json()["revoked"] is True
    owner_keys = (await world.owner.http.get("/auth/api-keys")).text
    assert (world.key_id in owner_keys) == (who not in ("owner", "same_account"))

    # Closing the account: another account's session (with this account's password)
    # closes nothing; the account's own devices close it, and everything goes.
    deleted = await h.request("DELETE", "/auth/account", json={"password": PASSWORD})
    if who in account_only:
        assert deleted.status_code == 401, deleted.text
    elif who == "other_account":
        assert deleted.status_code == 401 and deleted.json()["error"] == "invalid_credentials"
    else:
        assert deleted.status_code == 200, deleted.text
    owner_now = await world.owner.http.get(f"/ai/conversations/{world.cid}")
    if who in ("owner", "same_account"):
        assert owner_now.status_code == 401  # signed out everywhere: the account is gone
        for api in (world.owner, world.same_account):
            assert (await api.http.get("/auth/me")).status_code == 401
    else:
        assert owner_now.status_code == 200 and owner_now.json()["messages"][0]["content"] == SECRET


@pytest.mark.parametrize("who", ["other_account", "anonymous", "signed_out"])
async def test_socket_refuses_another_accounts_stream(
    srv: VedikaServer, world: World, who: str
) -> None:
    live = await start_slow(world.owner)
    mid, cid = live["message_id"], live["conversation_id"]
    intruder = world.caller(who)
    expected = ("session_expired",) if who == "signed_out" else ("message_not_found",)
    async with Socket(srv.ws_url) as ws:
        probes = [
            {"routeKey": "stream_chat", "message_id": mid},
            {"routeKey": "stream_chat", "message_id": mid, "resume_from": 1},
            {"routeKey": "stop_stream", "message_id": mid},
        ]
        for probe in probes:
            await ws.send(**probe, session_id=intruder.session_id)
            event = await ws.recv()
            assert event["type"] == "stream_error", event
            assert event["code"] in expected, (probe, event)
            assert "sea" not in str(event)
    # The answer went on: nobody but the account stopped it.
    row = next(
        m for m in (await world.owner.conversation(cid))["messages"] if m["message_id"] == mid
    )
    assert row["status"] not in ("stopped", "error"), row
    stop = await world.owner.http.post("/ai/chat/stop", json={"message_id": mid})
    assert stop.status_code == 200 and stop.json()["stopped"] is True


async def test_socket_resume_and_stop_from_the_accounts_other_device(
    srv: VedikaServer, world: World
) -> None:
    live = await start_slow(world.owner)
    mid, cid = live["message_id"], live["conversation_id"]
    device = world.same_account
    async with Socket(srv.ws_url) as ws:
        events = await ws.ask(device, message_id=mid, limit=2)  # resumed from this device
        await ws.send(routeKey="stop_stream", message_id=mid, session_id=device.session_id)
        events += await ws.until_terminal()
    done = assert_invariants(events)
    assert done["type"] == "stream_complete" and done["finish_reason"] == "stopped", done
    assert len(chunks_of(events)) >= 2
    stored = await world.owner.wait_status(cid, mid)
    assert stored["status"] == "stopped" and stored["content"] == done["full_response"]


async def admin_session(srv: VedikaServer) -> Api:
    admin = Api(srv.url)
    await admin.__aenter__()
    r = await admin.http.post("/auth/login", json={"email": ADMIN_EMAIL, "password": PASSWORD})
    if r.status_code == 401:  # the first test on this server creates it
        await sign(admin, "/auth/register", email=ADMIN_EMAIL, password=PASSWORD)
    else:
        assert r.status_code == 200, r.text
        admin.session_id = r.json()["session_id"]
        admin.http.headers["Authorization"] = f"Bearer {admin.session_id}"
    return admin


@pytest.mark.parametrize("who", ["admin", *WHO])
async def test_admin_calls_matrix(srv: VedikaServer, world: World, who: str) -> None:
    """The admin calls on the owner's account: the admin only (403 `admin_only` for any
    other account, the owner's own included; 401 without one). The admin role opens
    the admin API, not the users' conversations and files."""
    admin = await admin_session(srv)
    try:
        h = admin.http if who == "admin" else world.caller(who).http
        uid = world.account_id
        calls = [
            ("/admin/users/{uid}/coins", {"amount": 7, "reason": f"by {who}"}),
            ("/admin/users/{uid}/disable", None),
            ("/admin/users/{uid}/enable", None),
        ]
        for path, body in calls:
            r = await h.post(path.format(uid=uid), json=body)
            if who == "admin":
                assert r.status_code == 200, (path, r.text)
            elif who in ("anonymous", "signed_out"):
                assert r.status_code == 401, (path, r.text)
            else:
                assert r.status_code == 403 and r.json()["error"] == "admin_only", (path, r.text)
        assert (await world.owner.http.get("/auth/me")).status_code == 200  # enabled again
        if who == "admin":
            for path in (f"/ai/conversations/{world.cid}", f"/files/{world.file_id}"):
                r = await admin.http.get(path)
                assert r.status_code == 404, (path, r.text)
                no_secret(r)
    finally:
        await admin.__aexit__()


def test_the_matrix_covers_every_id_path(srv: VedikaServer) -> None:
    """A new route with an id in its path must be added to this matrix (or here)."""
    spec = httpx.get(f"{srv.url}/openapi.json").json()
    with_ids = {p for p in spec["paths"] if "{" in p}
    covered = {
        "/ai/conversations/{conversation_id}",
        "/ai/chat/stream/{message_id}",
        "/files/{file_id}",
        "/auth/sessions/{session_handle}",
        "/auth/api-keys/{key_id}",
        "/admin/users/{user_id}/disable",
        "/admin/users/{user_id}/enable",
        "/admin/users/{user_id}/coins",
        "/ai/conversations/{conversation_id}/export",
        "/ai/conversations/{conversation_id}/share",
        "/ai/conversations/{conversation_id}/active",
        # Public by design: a share link is read by anyone holding its unguessable id
        # (tests/test_share.py: a revoked one, other owners, snapshots).
        "/shared/{share_id}",
        # Not anyone's resource: the id names a configured identity provider
        # (tests/test_oidc.py: unknown ones, a connect by someone else's session).
        "/auth/oidc/{provider_id}/start",
        "/auth/oidc/{provider_id}/callback",
        "/auth/oidc/{provider_id}/connect",
    }
    assert with_ids == covered, with_ids ^ covered
