"""Accepting a turn: validate, de-duplicate, charge, and persist, in one transaction.

This is the only place that creates user messages, assistant placeholders and
charges. The user's message is committed before the server acknowledges it.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection
from sqlalchemy import text as sql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from vedika.chat import branching
from vedika.chat.preflight import Preflight
from vedika.credits import ledger
from vedika.credits.plans import daily_allowance
from vedika.errors import BadRequest, Conflict, NotFound, PayloadTooLarge, RateLimited
from vedika.identity.sessions import DeviceSession
from vedika.ids import uuid7
from vedika.models.catalogue import ModelInfo
from vedika.models.router import Choice
from vedika.models.service import ModelService
from vedika.modes.base import Draft, Prefetcher
from vedika.modes.early import EarlyCall
from vedika.protocol import ChatRequest, utcnow
from vedika.settings import Settings
from vedika.store import conversations as data
from vedika.store import files as files_data
from vedika.store import idempotency, tree
from vedika.store.dialect import NewRow, insert_rows
from vedika.store.direct import run as run_direct
from vedika.store.engine import Reads, Store
from vedika.store.preferences import preference_in

TITLE_CHARS = 60
# The answer sorts after its question even when both are written in the same instant.
ASSISTANT_AFTER = timedelta(microseconds=1)


@dataclass(slots=True)
class Turn:
    conversation_id: str
    user_message_id: str
    message_id: str
    device_id: str
    model: ModelInfo
    routing: Choice
    balance: ledger.Balance
    coins_charged: int
    transaction_id: str | None
    created_conversation: bool
    replayed: bool  # an idempotent retry: nothing new was created
    text: str
    mode: str
    created_at: datetime | None = None
    sources: list[str] = field(default_factory=list)  # "web", "files"
    attachments: list[str] = field(default_factory=list)  # file ids, all the device's own
    prefetched: EarlyCall | None = None  # its model call, sent while it was being stored
    parent_id: str | None = None  # the question's parent: the model's context ends there


@dataclass(slots=True)
class _Accepting:
    """A turn checked and priced, about to be stored."""

    req: ChatRequest
    device_id: str
    text: str
    choice: Choice
    sources: list[str]
    attachments: list[str]
    now: datetime
    conversation_id: str
    user_message_id: str
    message_id: str
    placed: branching.Placement = branching.NEW_CONVERSATION  # set in the transaction


# A transaction-scoped advisory lock per device (PostgreSQL), released at commit.
_DEVICE_LOCK = sql("SELECT pg_advisory_xact_lock(:b_key)")


def device_lock_key(device_id: str) -> int:
    """A stable signed 64-bit key for the device (the same on every instance)."""
    digest = hashlib.blake2b(device_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def too_many_answers(live: int) -> RateLimited:
    return RateLimited(
        f"You already have {live} answers being written; wait for one to finish or stop it.",
        code="too_many_answers",
        headers={"Retry-After": "5"},
    )


class Accepting:
    """The turns of each device being accepted in this process.

    A turn's model call may go out before the turn is stored (vedika.modes.early) only
    if no other turn of its device was being accepted here when it began, and none
    began since: then no sibling could commit between the checks it read (coins, the
    concurrent-answers count) and its call, and a turn those checks would refuse
    sends nothing upstream. What remains is one device sending turns to two instances in the same
    milliseconds: an early call may go out for a turn then refused, and is closed at
    once."""

    def __init__(self) -> None:
        self._devices: dict[str, list[int]] = {}  # device -> [open turns, turns begun]

    def begin(self, device_id: str) -> int:
        """A ticket for `alone`: 0 (never alone) if a sibling is already open."""
        entry = self._devices.setdefault(device_id, [0, 0])
        entry[0] += 1
        entry[1] += 1
        return entry[1] if entry[0] == 1 else 0

    def alone(self, device_id: str, ticket: int) -> bool:
        entry = self._devices.get(device_id)
        return ticket > 0 and entry is not None and entry[1] == ticket

    def end(self, device_id: str) -> None:
        entry = self._devices[device_id]
        entry[0] -= 1
        if entry[0] == 0:
            del self._devices[device_id]


def make_title(text: str) -> str:
    """The first line of the question, cut at a word boundary."""
    line = " ".join(text.split())
    if len(line) <= TITLE_CHARS:
        return line or "New conversation"
    cut = line[:TITLE_CHARS].rsplit(" ", 1)[0]
    return (cut or line[:TITLE_CHARS]) + "…"


class TurnService:
    def __init__(
        self, store: Store, models: ModelService, settings: Settings, instance_id: str
    ) -> None:
        self.store = store
        self.models = models
        self.settings = settings
        self.instance_id = instance_id
        self._accepting = Accepting()

    def check_message(self, message: str | None) -> str:
        text = (message or "").strip()
        if not text:
            raise BadRequest("Please type a message first: it is empty.", code="empty_message")
        if len(text) > self.settings.max_message_chars:
            raise BadRequest(
                f"Your message is {len(text):,} characters; the limit is "
                f"{self.settings.max_message_chars:,}. Please shorten it.",
                code="message_too_long",
            )
        return text

    async def _model_id(self, reads: Reads, req: ChatRequest, device_id: str) -> str:
        if req.model_id:
            return req.model_id
        pref = await preference_in(await reads.conn(), device_id=device_id)
        if pref and pref.preference_type == "user_override" and pref.model_id:
            return pref.model_id
        return self.settings.default_model

    async def accept(
        self,
        session: DeviceSession,
        req: ChatRequest,
        before_charge: Callable[[Preflight], Awaitable[None]] | None = None,
        prefetch: Prefetcher | None = None,
    ) -> Turn:
        """`before_charge` runs last before the transaction, with the turn's first look
        at its device (read once, for it and the early call's coins). `prefetch` (the
        mode's) may send the turn's model call before the transaction
        (vedika.modes.early); the call ends up on the new Turn, or is closed if the turn
        is not stored."""
        text = self.check_message(req.message)
        branching.check(req)
        device_id = session.owner
        ticket = self._accepting.begin(device_id)
        try:
            return await self._accept(ticket, device_id, text, req, before_charge, prefetch)
        finally:
            self._accepting.end(device_id)

    async def _accept(
        self,
        ticket: int,
        device_id: str,
        text: str,
        req: ChatRequest,
        before_charge: Callable[[Preflight], Awaitable[None]] | None,
        prefetch: Prefetcher | None,
    ) -> Turn:
        async with self.store.reads() as reads:
            if req.client_message_id:
                replay = await self._replay(await reads.conn(), device_id, req)
                if replay is not None:
                    return replay
            if req.regenerate:  # a new answer to the stored question, not to `message`
                text = await branching.regenerated_question(
                    await reads.conn(), device_id=device_id, req=req
                )
            sources, attachments = await self._sources(reads, device_id, req)
            model_id = await self._model_id(reads, req, device_id)
            choice = self.models.resolve(model_id, text, req.query_type)
            look = Preflight(
                self.store,
                device_id=device_id,
                daily=daily_allowance(self.settings, device_id),
            )
            if before_charge is not None:
                await before_charge(look)
            affordable = prefetch is not None and await self._affordable(look, choice.model)
        model = choice.model
        now = utcnow()
        conversation_id = req.conversation_id or uuid7()
        user_message_id, message_id = uuid7(), uuid7()
        early = None
        # No await between this check and the call: a turn of the same device that
        # starts accepting after it sees it and stays on the ordinary path.
        if affordable and prefetch is not None and self._accepting.alone(device_id, ticket):
            early = prefetch(Draft(model, text, sources, attachments))
        try:
            turn = await self._store(
                _Accepting(
                    req=req,
                    device_id=device_id,
                    text=text,
                    choice=choice,
                    sources=sources,
                    attachments=attachments,
                    now=now,
                    conversation_id=conversation_id,
                    user_message_id=user_message_id,
                    message_id=message_id,
                )
            )
        except BaseException:
            if early is not None:
                await asyncio.shield(early.cancel())
            raise
        if early is not None:
            if turn.replayed:  # a concurrent retry with the same key won
                await early.cancel()
            else:
                turn.prefetched = early
        return turn

    @staticmethod
    async def _affordable(look: Preflight, model: ModelInfo) -> bool:
        """Whether the device can pay for this turn, read before its model call may go
        out early, so a turn refused for its coins never sends its prompt upstream."""
        price = model.coins_per_message
        return price <= 0 or (await look.balance()).remaining >= price

    def _admit(self, conn: Connection, device_id: str) -> None:
        """The concurrent-answers cap, inside the turn's transaction so that concurrent
        turns cannot all pass it: on PostgreSQL a transaction lock per device orders
        them (on every instance); on SQLite the process's write lock already does."""
        cap = self.settings.max_concurrent_answers
        if not cap:
            return
        if conn.dialect.name == "postgresql":
            run_direct(conn, _DEVICE_LOCK, {"b_key": device_lock_key(device_id)})
        live = data.count_streaming(conn, device_id=device_id)
        if live >= cap:
            raise too_many_answers(live)

    async def _store(self, a: _Accepting) -> Turn:
        """The turn's one transaction: conversation, charge, question, answer. A plain
        function of the connection, so that on SQLite it is one trip to the database
        thread (Store.run_tx)."""
        model = a.choice.model
        created = a.req.conversation_id is None
        try:
            balance, txn = await self.store.run_tx(lambda conn: self._write(conn, a, created))
        except IntegrityError:
            # Two concurrent sends with the same key: the other one won; answer with its ids.
            if a.req.client_message_id:
                async with self.store.read() as conn:
                    replay = await self._replay(conn, a.device_id, a.req)
                if replay is not None:
                    return replay
            raise
        return Turn(
            conversation_id=a.conversation_id,
            user_message_id=a.user_message_id,
            message_id=a.message_id,
            device_id=a.device_id,
            model=model,
            routing=a.choice,
            balance=balance,
            coins_charged=model.coins_per_message,
            transaction_id=txn,
            sources=a.sources,
            attachments=a.attachments,
            created_conversation=created,
            replayed=False,
            text=a.text,
            mode=a.req.mode,
            created_at=a.now,
            parent_id=a.placed.parent,
        )

    def _write(
        self, conn: Connection, a: _Accepting, created: bool
    ) -> tuple[ledger.Balance, str | None]:
        req, text, choice, now, device_id = a.req, a.text, a.choice, a.now, a.device_id
        conversation_id, message_id = a.conversation_id, a.message_id
        model = choice.model
        self._admit(conn, device_id)
        if not created:
            locked = tree.lock(conn, conversation_id=conversation_id, device_id=device_id)
            if locked is None:
                raise NotFound(
                    "There is no conversation with that id.", code="conversation_not_found"
                )
            a.placed = branching.place(conn, req, locked=locked)
            if a.placed.question is not None:  # regenerating: the answer's question
                a.user_message_id = a.placed.question
        balance, txn = ledger.charge(
            conn,
            device_id=device_id,
            amount=model.coins_per_message,
            daily=daily_allowance(self.settings, device_id),
            message_id=message_id,
        )
        rows: list[NewRow] = []  # inserted together (one round trip on PostgreSQL)
        if created:
            # Written with its final count and model: no touch follows.
            rows.append(
                data.conversation_row(
                    conversation_id=conversation_id,
                    device_id=device_id,
                    title=make_title(text),
                    model=model.id,
                    now=now,
                    message_count=2,
                    active_leaf_id=message_id,
                )
            )
        if a.placed.question is None:
            rows.append(
                data.message_row(
                    id=a.user_message_id,
                    conversation_id=conversation_id,
                    role="user",
                    content=text,
                    status="complete",
                    mode=req.mode,
                    interaction_mode=req.interaction_mode or "type",
                    created_at=now,
                    updated_at=now,
                    parent_id=a.placed.parent,
                    **({"sources": a.sources} if a.sources else {}),
                    **({"attachments": a.attachments} if a.attachments else {}),
                )
            )
        rows.append(
            data.message_row(
                id=message_id,
                conversation_id=conversation_id,
                role="assistant",
                content="",
                status=data.ASSISTANT_LIVE,
                model=model.id,
                routing={
                    "selected_model": model.id,
                    "reason": choice.reason,
                    "confidence": choice.confidence,
                },
                mode=req.mode,
                interaction_mode=req.interaction_mode or "type",
                coins_charged=model.coins_per_message,
                instance_id=self.instance_id,
                created_at=now + ASSISTANT_AFTER,
                updated_at=now,
                heartbeat_at=now,
                parent_id=a.user_message_id,
            )
        )
        insert_rows(conn, rows)
        if not created:
            added = 2 if a.placed.question is None else 1
            data.touch_conversation(
                conn,
                conversation_id=conversation_id,
                model=model.id,
                now=now,
                added=added,
                leaf_id=message_id,
            )
        if req.client_message_id:
            idempotency.save_key(
                conn,
                device_id=device_id,
                key=req.client_message_id,
                fingerprint=req.fingerprint(),
                conversation_id=conversation_id,
                user_message_id=a.user_message_id,
                message_id=message_id,
                now=now,
            )
        return balance, txn

    async def _sources(
        self, reads: Reads, device_id: str, req: ChatRequest
    ) -> tuple[list[str], list[str]]:
        """The turn's sources and attachments. An attached id that is not one of the
        device's files is refused (404) before anything is charged, stored or generated.
        No `sources` means VEDIKA_DEFAULT_SOURCES; attachments always add `files`."""
        attachments = list(dict.fromkeys(req.attachments or []))
        limit = self.settings.max_files_per_message
        if len(attachments) > limit:
            raise PayloadTooLarge(
                f"That is {len(attachments)} attached files; at most {limit} per message.",
                code="too_many_files",
            )
        if attachments:
            conn = await reads.conn()
            rows = await files_data.owned_files(conn, device_id=device_id, file_ids=attachments)
            missing = [f for f in attachments if f not in {r.id for r in rows}]
            if missing:
                raise NotFound(
                    "An attached file does not exist (or was deleted). Attach it again.",
                    code="file_not_found",
                    details={"file_ids": missing},
                )
        sources = list(req.sources if req.sources is not None else self.settings.default_sources)
        if attachments and "files" not in sources:
            sources.append("files")
        return list(dict.fromkeys(sources)), attachments

    async def _replay(self, conn: AsyncConnection, device_id: str, req: ChatRequest) -> Turn | None:
        assert req.client_message_id
        key = await idempotency.find_key(conn, device_id=device_id, key=req.client_message_id)
        if key is None:
            return None
        if key.fingerprint != req.fingerprint():
            raise Conflict(
                "This client_message_id was already used for a different message. "
                "Use a new id for a new message.",
                code="idempotency_conflict",
            )
        msg = await data.find_message(conn, message_id=key.message_id, device_id=device_id)
        balance = await ledger.balance_in(
            conn, device_id=device_id, daily=daily_allowance(self.settings, device_id)
        )
        if msg is None:  # the conversation was deleted since
            raise NotFound("That message no longer exists.", code="message_not_found")
        model = self.models.catalogue.get(msg.model or "") or self.models.catalogue.available()[0]
        routing = msg.routing or {}
        return Turn(
            conversation_id=key.conversation_id,
            user_message_id=key.user_message_id,
            message_id=key.message_id,
            device_id=device_id,
            model=model,
            routing=Choice(
                model=model,
                reason=str(routing.get("reason", "")),
                confidence=float(routing.get("confidence", 1.0)),
                category="replay",
            ),
            balance=balance,
            coins_charged=0,
            transaction_id=None,
            created_conversation=False,
            replayed=True,
            text=req.message.strip(),
            mode=req.mode,
        )
