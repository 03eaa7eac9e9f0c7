"""The admin page and the reset-password page in Chromium, against a real server with
mail to a real SMTP server on loopback (aiosmtpd): an admin finds a user, grants coins
and disables the account, by keyboard; a disabled account's browser goes on
anonymously; a password is reset from the mailed link."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.axe import assert_no_violations
from tests.browser.conftest import _browser_server
from tests.fakes.upstream import FakeUpstream
from tests.support.server import VedikaServer
from tests.support.smtp import SmtpServer, body_of

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"
CSRF = {"X-Requested-With": "fetch"}
TOKEN = re.compile(r"(/reset-password\?token=[A-Za-z0-9_-]+)")


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture(scope="module")
def site(
    upstream: FakeUpstream, smtp: SmtpServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[VedikaServer]:
    """A fresh server (its first account is the admin) that mails to `smtp`."""
    yield from _browser_server(
        upstream,
        tmp_path_factory.mktemp("browser-admin"),
        VEDIKA_RATE_LOGINS_PER_MINUTE="0",
        VEDIKA_RATE_LOGINS_PER_ACCOUNT_HOUR="0",
        **smtp.env(),
    )


def register(site: VedikaServer, tag: str) -> tuple[str, str]:
    """A new account: its email and a bearer session of it."""
    email = f"{tag}-{time.monotonic_ns()}@example.org"
    r = httpx.post(
        f"{site.url}/auth/register", json={"email": email, "password": PASSWORD}, headers=CSRF
    )
    assert r.status_code == 201, r.text
    return email, r.json()["session_id"]


@pytest.fixture(scope="module")
def admin_email(site: VedikaServer) -> str:
    return register(site, "admin")[0]


def sign_in(page: Page, site: VedikaServer, email: str) -> str:
    """Sign in in the page as its scripts would (the sign-in page is not built here):
    the cookies from POST /auth/login, the session id where session.js keeps it."""
    page.goto(site.url + "/reset-password")
    page.wait_for_selector("body.ready")
    session_id: str = page.evaluate(
        """async ([email, password]) => {
            const r = await fetch("/auth/login", {
              method: "POST", credentials: "same-origin",
              headers: {"Content-Type": "application/json", "X-Requested-With": "fetch"},
              body: JSON.stringify({email, password}),
            });
            const body = await r.json();
            localStorage.setItem("vedika.session_id", body.session_id);
            localStorage.setItem("vedika.device_id", body.device_id);
            return body.session_id;
        }""",
        [email, PASSWORD],
    )
    return session_id


def me(site: VedikaServer, session_id: str) -> httpx.Response:
    return httpx.get(f"{site.url}/auth/me", headers={"Authorization": f"Bearer {session_id}"})


def test_admin_finds_a_user_grants_coins_and_disables(
    page: Page, site: VedikaServer, admin_email: str
) -> None:
    target, target_session = register(site, "target")
    sign_in(page, site, admin_email)
    page.goto(site.url + "/")
    page.wait_for_selector("body.ready")
    page.get_by_test_id("account-admin").click()  # the account menu's way in, for admins
    page.wait_for_url(site.url + "/admin")
    page.wait_for_selector("body.ready")
    status = page.locator("[data-admin-status]")
    expect(status).to_have_text(f"Signed in as {admin_email} (admin).")

    # Search by keyboard: the labelled field, Enter.
    search = page.get_by_label("Search users by email or name")
    search.focus()
    page.keyboard.type(target.split("@")[0])
    page.keyboard.press("Enter")
    rows = page.get_by_test_id("user-row")
    expect(rows).to_have_count(1)
    expect(rows.first.locator("td").first).to_have_text(target)
    expect(rows.first.get_by_test_id("user-balance")).to_have_text("100")

    rows.first.get_by_role("button", name=f"Grant coins to {target}").click()
    amount = page.get_by_label("Coins to grant (kept until spent)")
    expect(amount).to_be_focused()
    page.keyboard.type("30")
    page.get_by_label("Reason (kept in the audit log)").fill("beta tester")
    page.keyboard.press("Enter")
    expect(status).to_have_text(re.compile(rf"Granted 30 coins to {re.escape(target)}: 130 left"))
    expect(page.get_by_test_id("user-row").first.get_by_test_id("user-balance")).to_have_text("130")
    balance = httpx.get(
        f"{site.url}/coins/balance", headers={"Authorization": f"Bearer {target_session}"}
    ).json()
    assert balance["vedika_coins_remaining"] == 130

    toggle = page.get_by_role("button", name=f"Disable {target}")
    toggle.focus()
    page.keyboard.press("Enter")
    expect(status).to_have_text(f"{target} is disabled.")
    expect(status).to_be_focused()  # not lost with the re-rendered row
    expect(page.get_by_test_id("user-row").first.get_by_test_id("user-status")).to_have_text(
        "disabled"
    )
    refused = me(site, target_session)
    assert refused.status_code == 403 and refused.json()["error"] == "account_disabled"
    audit = page.get_by_test_id("audit-row")
    expect(audit.first).to_contain_text("disable")
    expect(audit.nth(1)).to_contain_text("grant_coins")
    expect(audit.nth(1)).to_contain_text("reason: beta tester")
    expect(page.get_by_test_id("admin-usage").locator("tbody tr")).to_have_count(7)
    expect(page.get_by_test_id("admin-health").locator("tbody tr").first).to_be_visible()
    assert_no_violations(page, state="the admin page with a user, usage, health, audit")


def test_the_admin_page_says_who_may_use_it(
    page: Page, site: VedikaServer, admin_email: str
) -> None:
    assert admin_email  # registered first: the plain user below is not the first account
    page.goto(site.url + "/admin")
    page.wait_for_selector("body.ready")
    expect(page.locator("[data-admin-status]")).to_have_text(
        "Sign in with an admin account to use this page."
    )
    assert_no_violations(page, state="the admin page, signed out")
    user, _ = register(site, "plain")
    sign_in(page, site, user)
    page.goto(site.url + "/admin")
    page.wait_for_selector("body.ready")
    expect(page.locator("[data-admin-status]")).to_contain_text("your account is not one")
    assert page.locator("[data-admin-body]").is_hidden()
    page.goto(site.url + "/")
    page.wait_for_selector("body.ready")
    expect(page.get_by_test_id("account-signout")).to_be_visible()  # the menu is filled
    expect(page.get_by_test_id("account-admin")).to_have_count(0)  # a user gets no link
    assert_no_violations(page, state="the admin page, not an admin")


def test_a_disabled_accounts_browser_goes_on_anonymously(
    page: Page, site: VedikaServer, admin_email: str
) -> None:
    user, _ = register(site, "leaver")
    session_id = sign_in(page, site, user)
    assert me(site, session_id).status_code == 200
    admin = httpx.post(
        f"{site.url}/auth/login", json={"email": admin_email, "password": PASSWORD}, headers=CSRF
    ).json()["session_id"]
    users = httpx.get(
        f"{site.url}/admin/users", params={"q": user}, headers={"Authorization": f"Bearer {admin}"}
    ).json()["users"]
    r = httpx.post(
        f"{site.url}/admin/users/{users[0]['id']}/disable",
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert r.status_code == 200
    page.goto(site.url + "/")
    page.wait_for_selector("body.ready")
    expect(page.locator(".coins-value")).not_to_have_text("–")
    fresh = page.evaluate("localStorage.getItem('vedika.session_id')")
    assert fresh and fresh != session_id
    anonymous = me(site, fresh)
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "not_signed_in"


def test_reset_password_from_the_mailed_link(
    page: Page, site: VedikaServer, smtp: SmtpServer
) -> None:
    email, _ = register(site, "forgetful")
    page.goto(site.url + "/reset-password")
    page.wait_for_selector("body.ready")
    field = page.get_by_label("Your account's email")
    expect(field).to_be_focused()
    assert_no_violations(page, state="the reset page, asking for the email")
    page.keyboard.type(email)
    page.keyboard.press("Enter")
    status = page.locator("[data-reset-status]")
    expect(status).to_contain_text("If an account has this email")
    link = TOKEN.search(body_of(smtp.wait_for(email, "new Vedika password")))
    assert link

    page.goto(site.url + link.group(1))
    page.wait_for_selector("body.ready")
    assert "token" not in page.url  # out of the address bar, history and Referer
    expect(page.get_by_label("New password (8 to 256 characters)")).to_be_focused()
    page.keyboard.type("my brand new password")
    assert_no_violations(page, state="the reset page, a new password")
    page.get_by_label("The new password again").fill("my brand new password")
    page.keyboard.press("Enter")
    expect(status).to_contain_text("Your password is changed")
    assert_no_violations(page, state="the reset page, done")
    login = httpx.post(
        f"{site.url}/auth/login",
        json={"email": email, "password": "my brand new password"},
        headers=CSRF,
    )
    assert login.status_code == 200

    page.goto(site.url + link.group(1))  # once only
    page.wait_for_selector("body.ready")
    page.get_by_label("New password (8 to 256 characters)").fill("another new password")
    page.get_by_label("The new password again").fill("another new password")
    page.get_by_test_id("reset-submit").click()
    expect(status).to_contain_text("unknown, used or expired")
    expect(page.get_by_label("Your account's email")).to_be_visible()


def test_without_mail_the_reset_page_says_so(
    page: Page, upstream: FakeUpstream, tmp_path: Path
) -> None:
    for server in _browser_server(upstream, tmp_path):
        page.goto(server.url + "/reset-password")
        page.wait_for_selector("body.ready")
        expect(page.locator("[data-reset-status]")).to_have_text(
            "Password reset by email is not available on this server. Ask its operator."
        )
        assert page.locator("[data-forgot-form]").is_hidden()
        assert_no_violations(page, state="the reset page without mail")


def test_a_user_makes_uses_and_revokes_an_api_key(page: Page, site: VedikaServer) -> None:
    """/keys, from the account menu: a key made with a name and an expiry is shown once,
    works, is listed with its last use, and once revoked is refused."""
    user, session = register(site, "keys")
    sign_in(page, site, user)
    page.goto(site.url + "/")
    page.wait_for_selector("body.ready")
    page.get_by_test_id("account-keys").click()
    page.wait_for_url(site.url + "/keys")
    page.wait_for_selector("body.ready")
    status = page.locator("[data-keys-status]")
    expect(status).to_have_text("You have 0 keys.")
    page.get_by_label("Name (what it is for)").fill("laptop script")
    page.get_by_label("Expires after").select_option("30")
    page.get_by_label("Name (what it is for)").press("Enter")  # keyboard only
    secret = page.get_by_test_id("key-secret")
    expect(secret).to_be_focused()
    key = secret.input_value()
    assert key.startswith("vk_") and len(key) == 46
    rows = page.get_by_test_id("key-row")
    expect(rows).to_have_count(1)
    expect(rows.first.locator("td").first).to_have_text("laptop script")
    expect(rows.first.get_by_test_id("key-last-used")).to_have_text("never")
    listed = httpx.get(
        f"{site.url}/auth/api-keys", headers={"Authorization": f"Bearer {session}"}
    ).json()["api_keys"]
    made, expires = (listed[0]["created_at"], listed[0]["expires_at"])
    assert (datetime.fromisoformat(expires) - datetime.fromisoformat(made)).days == 30
    assert_no_violations(page, state="the keys page, a new key shown")

    by_key = {"Authorization": f"Bearer {key}"}
    assert httpx.get(f"{site.url}/v1/models", headers=by_key).status_code == 200
    page.reload()
    page.wait_for_selector("body.ready")
    expect(page.get_by_test_id("key-secret")).to_be_hidden()  # shown once
    expect(rows.first.get_by_test_id("key-last-used")).not_to_have_text("never")

    rows.first.get_by_role("button", name="Revoke the key laptop script").click()
    expect(status).to_contain_text("revoked")
    expect(status).to_be_focused()
    expect(rows).to_have_count(0)
    assert httpx.get(f"{site.url}/v1/models", headers=by_key).status_code == 401
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        assert_no_violations(page, state=f"the keys page, no keys, {scheme}")


def test_the_keys_page_asks_to_sign_in(page: Page, site: VedikaServer) -> None:
    page.goto(site.url + "/keys")
    page.wait_for_selector("body.ready")
    expect(page.locator("[data-keys-status]")).to_have_text(
        "Sign in to make API keys: a key acts as your account."
    )
    assert page.locator("[data-keys-body]").is_hidden()
