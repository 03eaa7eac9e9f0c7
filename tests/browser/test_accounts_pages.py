"""The sign-in and sign-up pages and the account menu in a real Chromium (issue 17):
sign up after an anonymous question, sign out, a wrong password, sign in with the
password, and sign in through a real OpenID Provider on loopback (npm `oidc-provider`)
with its login and consent forms; the anonymous conversation is in the sidebar after
each sign-in. Strict CSP, labelled fields, errors in role=alert."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.axe import assert_no_violations
from tests.fakes.upstream import FakeUpstream
from tests.support.oidc_provider import OidcProvider, oidc_provider
from tests.support.server import VedikaServer, free_port

pytestmark = pytest.mark.browser

CHAT_URL = re.compile(r"/chat/([A-Za-z0-9_-]+)$")
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def sso_web(
    upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[VedikaServer, OidcProvider]]:
    data_dir: Path = tmp_path_factory.mktemp("browser-accounts")
    port = free_port()
    with oidc_provider([f"http://127.0.0.1:{port}/auth/oidc/test/callback"]) as op:
        env = {
            "VEDIKA_DATABASE_URL": f"sqlite+aiosqlite:///{data_dir}/v.db",
            "VEDIKA_DATA_DIR": str(data_dir),
            "OPENAI_BASE_URL": upstream.base_url,
            "VEDIKA_OLLAMA_AUTODETECT": "false",
            "VEDIKA_DAILY_CREDITS": "100000",
            "VEDIKA_RATE_MESSAGES_PER_MINUTE": "0",
            "VEDIKA_RATE_SESSIONS_PER_MINUTE": "0",
            "VEDIKA_RATE_LOGINS_PER_MINUTE": "100000",
            "VEDIKA_RATE_LOGINS_PER_ACCOUNT_HOUR": "100000",
            "VEDIKA_FLUSH_SECONDS": "0.5",
            "VEDIKA_LOG_LEVEL": "warning",
            "VEDIKA_OIDC_PROVIDERS": json.dumps([op.setting()]),
        }
        server = VedikaServer(env, port=port, log_path=data_dir / "server.log").start()
        try:
            yield server, op
        finally:
            server.stop()


@pytest.fixture
def web(sso_web: tuple[VedikaServer, OidcProvider]) -> VedikaServer:
    return sso_web[0]


def ask_anonymously(page: Page, web: VedikaServer, question: str) -> str:
    """Ask from the home page as the anonymous device; the conversation's id."""
    page.goto(web.url + "/")
    page.wait_for_selector("body.ready")
    page.get_by_test_id("chat-input").fill(question)
    page.get_by_test_id("send-button").click()
    page.wait_for_url(CHAT_URL)
    page.wait_for_function(
        "() => document.querySelector('[data-testid=message-assistant][data-status=complete]')",
        timeout=20_000,
    )
    match = CHAT_URL.search(page.url)
    assert match
    return match.group(1)


def form(page: Page) -> Locator:
    return page.locator("[data-account-form]")


def conversation_in_sidebar(page: Page, conversation_id: str) -> None:
    expect(
        page.locator(
            f"[data-testid=sidebar-conversation][data-conversation-id='{conversation_id}']"
        )
    ).to_be_visible()


def test_sign_up_sign_out_and_sign_in_with_a_password(page: Page, web: VedikaServer) -> None:
    conversation = ask_anonymously(page, web, "What do herons eat?")
    menu = page.get_by_test_id("account-menu")
    expect(menu.get_by_test_id("account-signin")).to_be_visible()
    menu.get_by_test_id("account-signup").click()
    page.wait_for_url(re.compile(r"/signup\?next="))
    page.wait_for_selector("body.ready")
    expect(page.get_by_role("heading", name="Create your account")).to_be_visible()
    email = f"ana-{time.monotonic_ns()}@example.org"
    # Labelled fields, reachable by their labels.
    form(page).get_by_label("Name").fill("Ana Lima")
    form(page).get_by_label("Email").fill(email)
    form(page).get_by_label("Password").fill("short")
    page.get_by_role("button", name="Sign up").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("at least 8 characters")
    assert_no_violations(page, state="sign-up page, an error shown")
    form(page).get_by_label("Password").fill(PASSWORD)
    form(page).get_by_label("Password").press("Enter")  # keyboard only
    page.wait_for_url(f"{web.url}/chat/{conversation}")
    page.wait_for_selector("body.ready")
    expect(menu.get_by_test_id("account-who")).to_contain_text("Ana Lima")
    expect(menu.get_by_test_id("account-who")).to_contain_text(email)
    conversation_in_sidebar(page, conversation)
    assert_no_violations(page, state="chat page, signed in (account menu)")
    expect(menu).not_to_contain_text("null")  # no provider left to connect: nothing shown

    menu.get_by_test_id("account-signout").click()
    page.wait_for_url(f"{web.url}/")
    page.wait_for_selector("body.ready")
    expect(menu.get_by_test_id("account-signin")).to_be_visible()
    expect(page.locator(".sidebar-empty")).to_contain_text("Your conversations will appear here")

    menu.get_by_test_id("account-signin").click()
    page.wait_for_url(re.compile(r"/signin"))
    page.wait_for_selector("body.ready")
    form(page).get_by_label("Email").fill(email)
    form(page).get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("do not match an account")
    expect(form(page).get_by_label("Password")).to_be_focused()
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        assert_no_violations(page, state=f"sign-in page, wrong password, {scheme}")
    form(page).get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{web.url}/")
    page.wait_for_selector("body.ready")
    expect(menu.get_by_test_id("account-who")).to_contain_text("Ana Lima")
    conversation_in_sidebar(page, conversation)

    # Connect the identity provider to this account from the menu.
    menu.get_by_test_id("account-connect-test").click()
    page.locator("input[name=login]").fill(f"ana-{time.monotonic_ns()}")
    page.locator("input[name=password]").fill("anything")
    page.locator("button[type=submit]").click()
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{web.url}/")
    page.wait_for_selector("body.ready")
    expect(menu.get_by_test_id("account-who")).to_contain_text("Ana Lima")
    expect(menu.get_by_test_id("account-connect-test")).to_have_count(0)

    # Sign out everywhere: this browser too is anonymous again.
    expect(menu.get_by_test_id("account-signout-all")).to_be_visible()
    menu.get_by_test_id("account-signout-all").click()
    page.wait_for_url(f"{web.url}/")
    page.wait_for_selector("body.ready")
    expect(menu.get_by_test_id("account-signin")).to_be_visible()


def test_sign_in_through_the_identity_provider(page: Page, web: VedikaServer) -> None:
    conversation = ask_anonymously(page, web, "Where do herons nest?")
    page.get_by_test_id("account-signin").click()
    page.wait_for_url(re.compile(r"/signin\?next="))
    page.wait_for_selector("body.ready")
    page.get_by_test_id("provider-test").click()
    # The provider's own pages: its login form, then its consent form.
    login = f"bo-{time.monotonic_ns()}"
    page.locator("input[name=login]").fill(login)
    page.locator("input[name=password]").fill("anything")
    page.locator("button[type=submit]").click()
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{web.url}/chat/{conversation}")
    page.wait_for_selector("body.ready")
    who = page.get_by_test_id("account-who")
    expect(who).to_contain_text(f"Test {login}")
    expect(who).to_contain_text(f"{login}@example.test")
    conversation_in_sidebar(page, conversation)


def test_an_error_from_the_provider_is_said_on_the_page(page: Page, web: VedikaServer) -> None:
    page.goto(web.url + "/signin?error=account_exists")
    page.wait_for_selector("body.ready")
    expect(page.get_by_role("alert")).to_contain_text("already exists")
    expect(page.get_by_test_id("provider-test")).to_have_text("Continue with Test ID")
    assert_no_violations(page, state="sign-in page, a provider's error, provider buttons")
    page.get_by_test_id("account-switch").click()
    page.wait_for_url(re.compile(r"/signup\?next=%2F$"))
