"""Plans: how many coins a day an owner gets (docs/accounts.md).

Two plans for now: an anonymous device gets `VEDIKA_DAILY_CREDITS`, a signed-in account
`VEDIKA_ACCOUNT_DAILY_CREDITS`, its balance shared by all its devices (the ledger keys
both by owner). This is the one place that decides an allowance: admin grants and other
plans (issue 17, not built yet) belong here, e.g. an account's own allowance read
before the day's row is opened.
"""

from __future__ import annotations

from vedika.ids import is_account_owner
from vedika.settings import Settings

ANONYMOUS = "anonymous"
ACCOUNT = "account"


def plan_of(owner: str) -> str:
    return ACCOUNT if is_account_owner(owner) else ANONYMOUS


def daily_allowance(settings: Settings, owner: str) -> int:
    """The coins `owner` (a device id or an account's key) gets per UTC day."""
    if is_account_owner(owner):
        return settings.account_daily_credits
    return settings.daily_credits
