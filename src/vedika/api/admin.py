"""The admin API (docs/accounts.md "The admin role", docs/protocol.md "Admin"): users
(search, disable, enable, grant coins), usage per day, model health, and the audit log
of admin actions. Every call needs a session signed in to an admin account
(`require_admin`: 401 without one, 403 `admin_only` for everyone else); every change
is CSRF-checked like the account endpoints and writes an audit row in its own
transaction.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.sql import ColumnElement

from vedika.api.accounts import CsrfChecked, SignedIn
from vedika.api.deps import ServicesDep
from vedika.credits import ledger, plans
from vedika.errors import BadRequest, Forbidden, NotFound, Unauthorized
from vedika.identity import accounts, apikeys, roles
from vedika.identity.accounts import Account
from vedika.identity.sessions import forget_account
from vedika.ids import account_owner
from vedika.protocol import Text, aware, iso, utcnow
from vedika.services import Services
from vedika.store.tables import (
    accounts as accounts_table,
)
from vedika.store.tables import (
    admin_audit,
    coin_ledger,
    conversations,
    device_sessions,
    messages,
)

router = APIRouter(tags=["admin"])

UserId = Annotated[str, Path(min_length=1, max_length=36, pattern=r"^[0-9a-f-]+$")]
HEALTH_ROWS = 50_000  # the newest answers a health report reads at most
FAILED = ("error", "interrupted")


async def require_admin(services: ServicesDep, session: SignedIn) -> Account:
    """The caller's account, which must be an admin's (401 when not signed in, 403
    `admin_only` for a user)."""
    async with services.store.read() as conn:
        account = await accounts.find_by_id(conn, account_id=session.account_id or "")
        if account is None:
            raise Unauthorized("This account no longer exists.", code="not_signed_in")
        role = await roles.role_of(
            conn,
            email=account.email,
            account_id=account.id,
            admin_emails=services.settings.admin_emails,
        )
    if role != roles.ADMIN:
        raise Forbidden("Only an admin of this server may do that.", code="admin_only")
    return account


Admin = Annotated[Account, Depends(require_admin)]


class GrantRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    amount: int = Field(..., ge=1, le=1_000_000)
    reason: Text = Field("", max_length=200)


def _like(q: str) -> str:
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


@router.get("/admin/users")
async def list_users(
    services: ServicesDep,
    admin: Admin,
    q: str = Query("", max_length=254, description="Part of an email or a name."),
    limit: int = Query(50, ge=1, le=200),
    cursor: str | None = Query(None, max_length=36, pattern=r"^[0-9a-f-]+$"),
) -> dict[str, Any]:
    """Accounts, newest first: id, email, name, role, created_at, disabled, balance
    (today's coins) and last_seen (the latest sign-in or question). `q` searches
    emails and names; `next_cursor` pages on."""
    a = accounts_table
    where: list[ColumnElement[bool]] = []
    if q.strip():
        pattern = _like(q.strip())
        where.append(
            or_(
                func.lower(a.c.email).like(pattern, escape="\\"),
                func.lower(func.coalesce(a.c.name, "")).like(pattern, escape="\\"),
            )
        )
    if cursor:
        where.append(a.c.id < cursor)
    stmt = select(a).order_by(a.c.id.desc()).limit(limit + 1)
    if where:
        stmt = stmt.where(and_(*where))
    async with services.store.read() as conn:
        rows = list((await conn.execute(stmt)).all())
        more = len(rows) > limit
        rows = rows[:limit]
        ids = [r.id for r in rows]
        owners = [account_owner(i) for i in ids]
        signed = dict(
            (
                await conn.execute(
                    select(device_sessions.c.account_id, func.max(device_sessions.c.created_at))
                    .where(device_sessions.c.account_id.in_(ids))
                    .group_by(device_sessions.c.account_id)
                )
            ).all()
        )
        asked = dict(
            (
                await conn.execute(
                    select(conversations.c.device_id, func.max(conversations.c.updated_at))
                    .where(conversations.c.device_id.in_(owners))
                    .group_by(conversations.c.device_id)
                )
            ).all()
        )
        first_id = await roles.first_account_id(conn)
    users = []
    for r in rows:
        owner = account_owner(r.id)
        seen = [t for t in (signed.get(r.id), asked.get(owner)) if t is not None]
        bal = await ledger.balance(
            services.store, device_id=owner, daily=plans.daily_allowance(services.settings, owner)
        )
        users.append(
            {
                "id": r.id,
                "email": r.email,
                "name": r.name,
                "role": roles.role(
                    email=r.email,
                    account_id=r.id,
                    admin_emails=services.settings.admin_emails,
                    first_id=first_id,
                ),
                "created_at": iso(r.created_at),
                "disabled": r.disabled_at is not None,
                "disabled_at": iso(r.disabled_at) if r.disabled_at else None,
                "balance": {"daily": bal.daily, "used": bal.used, "remaining": bal.remaining},
                "last_seen": iso(max(aware(t) for t in seen)) if seen else None,
            }
        )
    return {"users": users, "next_cursor": ids[-1] if more and ids else None}


async def _target(services: Services, user_id: str) -> Account:
    async with services.store.read() as conn:
        account = await accounts.find_by_id(conn, account_id=user_id)
    if account is None:
        raise NotFound("There is no account with that id.", code="user_not_found")
    return account


async def _set_disabled(
    services: Services, admin: Account, user_id: str, disabled: bool
) -> dict[str, Any]:
    target = await _target(services, user_id)
    if disabled and target.id == admin.id:
        raise BadRequest("You cannot disable your own account.", code="cannot_disable_self")
    now = utcnow()
    async with services.store.tx() as conn:
        changed = await conn.execute(
            update(accounts_table)
            .where(
                and_(
                    accounts_table.c.id == target.id,
                    accounts_table.c.disabled_at.is_(None)
                    if disabled
                    else accounts_table.c.disabled_at.is_not(None),
                )
            )
            .values(disabled_at=now if disabled else None)
        )
        if changed.rowcount:
            await roles.audit(
                conn,
                admin_account_id=admin.id,
                admin_email=admin.email,
                action="disable" if disabled else "enable",
                target=target.id,
                detail={"email": target.email},
            )
    forget_account(services.store, target.id)
    apikeys.forget_account(services.store, target.id)
    return {"id": target.id, "disabled": disabled, "changed": bool(changed.rowcount)}


@router.post("/admin/users/{user_id}/disable")
async def disable_user(
    services: ServicesDep,
    admin: Admin,
    user_id: UserId,
    _csrf: CsrfChecked,
) -> dict[str, Any]:
    """Disable an account: its sessions get 403 `account_disabled` everywhere (REST,
    the fast lane, SSE, the socket) and it cannot sign in, until enabled again."""
    return await _set_disabled(services, admin, user_id, True)


@router.post("/admin/users/{user_id}/enable")
async def enable_user(
    services: ServicesDep,
    admin: Admin,
    user_id: UserId,
    _csrf: CsrfChecked,
) -> dict[str, Any]:
    """Enable a disabled account again (its sessions work again)."""
    return await _set_disabled(services, admin, user_id, False)


@router.post("/admin/users/{user_id}/coins")
async def grant_coins(
    services: ServicesDep,
    admin: Admin,
    body: GrantRequest,
    user_id: UserId,
    _csrf: CsrfChecked,
) -> dict[str, Any]:
    """Give an account `amount` more coins today, through the ledger (a `grant`
    entry); the audit log keeps the reason."""
    target = await _target(services, user_id)
    owner = account_owner(target.id)
    async with services.store.tx() as conn:
        bal = await ledger.grant(
            conn,
            device_id=owner,
            amount=body.amount,
            daily=plans.daily_allowance(services.settings, owner),
        )
        await roles.audit(
            conn,
            admin_account_id=admin.id,
            admin_email=admin.email,
            action="grant_coins",
            target=target.id,
            detail={"email": target.email, "amount": body.amount, "reason": body.reason},
        )
    return {
        "id": target.id,
        "granted": body.amount,
        "balance": {"daily": bal.daily, "used": bal.used, "remaining": bal.remaining},
    }


def _day(dialect: str, column: Any) -> Any:
    """A UTC timestamp column as its `YYYY-MM-DD` day."""
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.strftime("%Y-%m-%d", column)


@dataclass
class _Tally:
    turns: int = 0
    tokens: int = 0
    coins: int = 0

    def out(self) -> dict[str, int]:
        return {"turns": self.turns, "tokens": self.tokens, "coins": self.coins}


@router.get("/admin/usage")
async def usage(
    services: ServicesDep, admin: Admin, days: int = Query(7, ge=1, le=366)
) -> dict[str, Any]:
    """Per UTC day of the last `days` (today included): turns (answers), tokens (in and
    out), coins spent (charges less refunds, from the ledger), in all and per model."""
    now = utcnow()
    start = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    first_day = start.strftime("%Y-%m-%d")
    m = messages.c
    async with services.store.read() as conn:
        dialect = conn.dialect.name
        day = _day(dialect, m.created_at).label("day")
        turn_rows = (
            await conn.execute(
                select(
                    day,
                    m.model,
                    func.count(),
                    func.coalesce(func.sum(m.input_tokens + m.output_tokens), 0),
                )
                .where(and_(m.role == "assistant", m.created_at >= start))
                .group_by(day, m.model)
            )
        ).all()
        coin_rows = (
            await conn.execute(
                select(coin_ledger.c.day, m.model, func.sum(coin_ledger.c.amount))
                .select_from(coin_ledger.outerjoin(messages, m.id == coin_ledger.c.message_id))
                .where(
                    and_(
                        coin_ledger.c.day >= first_day,
                        coin_ledger.c.kind.in_(
                            (ledger.CHARGE, ledger.CHARGE_GRANTED, ledger.REFUND)
                        ),
                    )
                )
                .group_by(coin_ledger.c.day, m.model)
            )
        ).all()
    per_day: dict[str, dict[str, _Tally]] = defaultdict(lambda: defaultdict(_Tally))
    for d, model, turns, tokens in turn_rows:
        tally = per_day[d][model or "unknown"]
        tally.turns += int(turns)
        tally.tokens += int(tokens)
    for d, model, amount in coin_rows:
        per_day[d][model or "unknown"].coins += -int(amount or 0)
    out = []
    totals = _Tally()
    for i in range(days):
        d = (start + timedelta(days=i)).strftime("%Y-%m-%d")
        models = per_day.get(d, {})
        day_total = _Tally(
            sum(t.turns for t in models.values()),
            sum(t.tokens for t in models.values()),
            sum(t.coins for t in models.values()),
        )
        totals = _Tally(
            totals.turns + day_total.turns,
            totals.tokens + day_total.tokens,
            totals.coins + day_total.coins,
        )
        out.append(
            {
                "day": d,
                **day_total.out(),
                "models": {name: t.out() for name, t in sorted(models.items())},
            }
        )
    return {"days": out, "since": first_day, "totals": totals.out()}


def _percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * p // 100))  # ceil
    return sorted_values[int(rank) - 1]


@router.get("/admin/models/health")
async def models_health(
    services: ServicesDep, admin: Admin, days: int = Query(7, ge=1, le=366)
) -> dict[str, Any]:
    """Per model, over the last `days`: answers, errors (ended `error` or
    `interrupted`), the error rate, and the latency of answers that ended well (from
    the question being accepted to the answer being stored), p50 and p95 in ms."""
    since = utcnow() - timedelta(days=days)
    m = messages.c
    async with services.store.read() as conn:
        rows = (
            await conn.execute(
                select(m.model, m.status, m.created_at, m.updated_at)
                .where(and_(m.role == "assistant", m.created_at >= since, m.status != "streaming"))
                .order_by(m.created_at.desc())
                .limit(HEALTH_ROWS)
            )
        ).all()
    answers: dict[str, int] = defaultdict(int)
    errors: dict[str, int] = defaultdict(int)
    latencies: dict[str, list[float]] = defaultdict(list)
    for model, status, created, updated in rows:
        name = model or "unknown"
        answers[name] += 1
        if status in FAILED:
            errors[name] += 1
        else:
            took = (aware(updated) - aware(created)).total_seconds() * 1000
            latencies[name].append(max(took, 0.0))
    names = set(answers) | {info.id for info in services.models.catalogue.available()}
    report = []
    for name in sorted(names):
        lat = sorted(latencies.get(name, []))
        p50, p95 = _percentile(lat, 50), _percentile(lat, 95)
        n = answers.get(name, 0)
        report.append(
            {
                "model": name,
                "answers": n,
                "errors": errors.get(name, 0),
                "error_rate": round(errors.get(name, 0) / n, 4) if n else 0.0,
                "latency_ms": {
                    "p50": round(p50, 1) if p50 is not None else None,
                    "p95": round(p95, 1) if p95 is not None else None,
                },
            }
        )
    return {"models": report, "days": days, "sampled": len(rows)}


@router.get("/admin/audit")
async def audit_log(
    services: ServicesDep,
    admin: Admin,
    limit: int = Query(50, ge=1, le=200),
    cursor: str | None = Query(None, max_length=36, pattern=r"^[0-9a-f-]+$"),
) -> dict[str, Any]:
    """The admin actions, newest first: who, what, on whom, when, and the detail."""
    stmt = select(admin_audit).order_by(admin_audit.c.id.desc()).limit(limit + 1)
    if cursor:
        stmt = stmt.where(admin_audit.c.id < cursor)
    async with services.store.read() as conn:
        rows = list((await conn.execute(stmt)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "entries": [
            {
                "id": r.id,
                "admin": {"id": r.admin_account_id, "email": r.admin_email},
                "action": r.action,
                "target": r.target,
                "detail": r.detail,
                "created_at": iso(r.created_at),
            }
            for r in rows
        ],
        "next_cursor": rows[-1].id if more and rows else None,
    }
