"""Hypothesis stateful test of the coin ledger against a real server.

Random sequences of sends (alone and in concurrent bursts), idempotent retries,
key reuse with another body, stops, and upstream faults (500 before the first
chunk, a cut mid-answer). After every step, once answers have settled:
- the ledger balances: what the balance says was used is minus the ledger's sum;
- the balance is never below zero and never above the allowance;
- every answer is charged once at most, and refunded iff it delivered nothing;
- every key maps to one message.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from tests.support.server import serving

MODELS = ["fake-fast", "fake-fast", "fake-500", "fake-cut", "fake-slow"]
DAILY = 12


@pytest.fixture(scope="module")
def ledger_server(tmp_path_factory, upstream, models_file):
    tmp: Path = tmp_path_factory.mktemp("ledger")
    with serving(tmp, upstream, models_file, VEDIKA_DAILY_CREDITS=str(DAILY)) as srv:
        yield srv


class Ledger(RuleBasedStateMachine):
    base_url = ""

    @initialize()
    def session(self) -> None:
        self.http = httpx.Client(base_url=self.base_url, timeout=30)
        sid = self.http.post("/auth/device-session", json={}).json()["session_id"]
        self.http.headers["Authorization"] = f"Bearer {sid}"
        self.keys: dict[str, tuple[dict, str]] = {}  # key -> (body, message_id)
        self.messages: dict[str, str] = {}  # message_id -> conversation_id

    def teardown(self) -> None:
        self.http.close()

    def _send(self, body: dict) -> httpx.Response:
        r = self.http.post("/ai/chat/start", json=body)
        assert r.status_code in (200, 201, 402), r.text
        if r.status_code != 402:
            data = r.json()
            self.messages[data["message_id"]] = data["conversation_id"]
            key = body.get("client_message_id")
            if key:
                known = self.keys.get(key)
                assert known is None or known[1] == data["message_id"], "one key, one message"
                self.keys[key] = (body, data["message_id"])
        else:
            assert r.json()["error"] == "credits_exhausted"
        return r

    @rule(model=st.sampled_from(MODELS), keyed=st.booleans())
    def send(self, model: str, keyed: bool) -> None:
        body = {"message": f"q {uuid.uuid4().hex[:6]}", "model_id": model}
        if keyed:
            body["client_message_id"] = str(uuid.uuid4())
        self._send(body)

    @rule(n=st.integers(2, 6), same_key=st.booleans(), model=st.sampled_from(MODELS))
    def burst(self, n: int, same_key: bool, model: str) -> None:
        key = str(uuid.uuid4())
        bodies = [
            {
                "message": "burst" if same_key else f"burst {i}",
                "model_id": model,
                "client_message_id": key if same_key else str(uuid.uuid4()),
            }
            for i in range(n)
        ]
        with ThreadPoolExecutor(n) as pool:
            results = list(pool.map(lambda b: self.http.post("/ai/chat/start", json=b), bodies))
        ok = [r for r in results if r.status_code in (200, 201)]
        for r, body in zip(results, bodies, strict=True):
            assert r.status_code in (200, 201, 402), r.text
            if r.status_code != 402:
                self.messages[r.json()["message_id"]] = r.json()["conversation_id"]
                self.keys[body["client_message_id"]] = (body, r.json()["message_id"])
        if same_key:
            assert len({r.json()["message_id"] for r in ok}) <= 1, "one key, one message"

    @rule(data=st.data())
    def retry(self, data: st.DataObject) -> None:
        if not self.keys:
            return
        key = data.draw(st.sampled_from(sorted(self.keys)))
        body, message_id = self.keys[key]
        r = self.http.post("/ai/chat/start", json=body)
        assert r.status_code == 200 and r.json()["message_id"] == message_id, r.text

    @rule(data=st.data())
    def reuse_key_with_other_body(self, data: st.DataObject) -> None:
        if not self.keys:
            return
        key = data.draw(st.sampled_from(sorted(self.keys)))
        body = dict(self.keys[key][0], message="something else entirely")
        r = self.http.post("/ai/chat/start", json=body)
        assert r.status_code == 409 and r.json()["error"] == "idempotency_conflict"

    @rule(data=st.data())
    def stop(self, data: st.DataObject) -> None:
        if not self.messages:
            return
        mid = data.draw(st.sampled_from(sorted(self.messages)))
        r = self.http.post("/ai/chat/stop", json={"message_id": mid})
        assert r.status_code == 200, r.text

    def _settled(self) -> dict[str, dict]:
        """Every known answer in its final state."""
        deadline = time.monotonic() + 20
        while True:
            final: dict[str, dict] = {}
            for cid in set(self.messages.values()):
                conv = self.http.get(f"/ai/conversations/{cid}").json()
                for m in conv["messages"]:
                    if m["role"] == "assistant":
                        final[m["message_id"]] = m
            if all(m["status"] != "streaming" for m in final.values()):
                return final
            assert time.monotonic() < deadline, "answers stuck in streaming"
            time.sleep(0.05)

    @invariant()
    def ledger_balances(self) -> None:
        if not hasattr(self, "http"):
            return
        final = self._settled()
        balance = self.http.get("/coins/balance").json()
        txns = self.http.get("/coins/transactions", params={"limit": 500}).json()["transactions"]
        assert 0 <= balance["credits_remaining"] <= DAILY
        assert balance["credits_used"] == -sum(t["amount"] for t in txns)
        net: dict[str, int] = {}
        charges: dict[str, int] = {}
        for t in txns:
            net[t["message_id"]] = net.get(t["message_id"], 0) + t["amount"]
            if t["type"] == "charge":
                charges[t["message_id"]] = charges.get(t["message_id"], 0) + 1
        assert all(c == 1 for c in charges.values()), "charged twice"
        for mid, msg in final.items():
            delivered = bool(msg["content"])
            assert net.get(mid, 0) == (-1 if delivered else 0), (mid, msg["status"], net.get(mid))


def test_credit_ledger_state_machine(ledger_server) -> None:
    Ledger.base_url = ledger_server.url
    run = Ledger.TestCase
    run.settings = settings(
        max_examples=6,
        stateful_step_count=12,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    run().runTest()
