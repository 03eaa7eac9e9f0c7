"""A newcomer's first minutes (issue 20): the coin badge says what is left and when it
comes back; the Web chip says when no search provider is set up (and how to add one)
instead of looking on; the optional keyless provider (DuckDuckGo through `ddgs`, here
against the fake web's copy of its page) turns the chip on and cites pages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import _browser_server
from tests.browser.test_pages import CHAT_URL, assistants, open_home, pick_model, send, wait_status
from tests.fakes.search import FakeSearch
from tests.fakes.upstream import FakeUpstream
from tests.support.server import VedikaServer


@pytest.fixture(scope="module")
def web_ddg(
    upstream: FakeUpstream, search: FakeSearch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[VedikaServer]:
    yield from _browser_server(
        upstream,
        tmp_path_factory.mktemp("browser-ddg"),
        VEDIKA_SEARCH_PROVIDER="duckduckgo",
        VEDIKA_DUCKDUCKGO_URL=f"{search.base_url}/ddg/html/",
        VEDIKA_FETCH_ALLOW="127.0.0.1/32",
        VEDIKA_DAILY_CREDITS="20",
    )


def _badge_numbers(page: Page) -> tuple[int, int]:
    badge = page.get_by_test_id("coins-badge")
    expect(badge).to_have_attribute("data-total", re.compile(r"\d+"))
    return int(badge.get_attribute("data-used") or -1), int(badge.get_attribute("data-total") or -1)


def test_coin_badge_says_what_is_left_and_when_it_comes_back(
    page: Page, web_ddg: VedikaServer, artifacts: Path
) -> None:
    open_home(page, web_ddg)
    badge = page.get_by_test_id("coins-badge")
    expect(badge.locator(".coins-value")).to_have_text("20 coins left")
    assert "midnight UTC" in (badge.get_attribute("title") or "")
    page.screenshot(path=str(artifacts / "first-minutes-home.png"))
    pick_model(page, "fake-steady")
    send(page, "What is a good first question?")
    page.wait_for_url(CHAT_URL)
    wait_status(page, "complete")
    expect(badge.locator(".coins-value")).to_have_text("19 coins left")
    used, total = _badge_numbers(page)
    assert (used, total) == (1, 20)
    assert "19 of today's 20 Vedika coins left (1 used)" in (badge.get_attribute("title") or "")


def test_web_chip_without_a_provider_says_so(page: Page, web: VedikaServer) -> None:
    open_home(page, web)
    chip = page.get_by_test_id("source-web")
    expect(chip).to_have_attribute("aria-disabled", "true")
    expect(chip).to_have_attribute("aria-pressed", "false")
    expect(chip).to_contain_text("Web: not set up")
    assert "VEDIKA_SEARXNG_URL" in (chip.get_attribute("title") or "")
    # The operator's status section (development): what is connected, what to do next.
    status = page.get_by_test_id("server-status")
    expect(status.locator("summary")).to_have_text(
        "This server: 1 thing to connect (development only)"
    )
    status.locator("summary").click()
    expect(status.locator("dd").nth(2)).to_have_text("off (no web search provider)")
    expect(status.locator("li")).to_contain_text(["Turn on web search"])
    status.locator("summary").click()  # folded again: it sits over the page's corner
    chip.focus()  # aria-disabled, yet reachable: pressing it says why and how
    page.keyboard.press("Enter")
    expect(page.get_by_text(re.compile("Web search is not set up on this server"))).to_be_visible()
    expect(chip).to_have_attribute("aria-pressed", "false")  # clicking does not turn it on
    pick_model(page, "fake-steady")
    send(page, "Is the web on?")
    page.wait_for_url(CHAT_URL)
    wait_status(page, "complete")
    cid = page.url.rsplit("/", 1)[1]
    stored = page.evaluate(
        """async (cid) => {
            const r = await fetch(`/ai/conversations/${cid}`, {credentials: "same-origin"});
            return r.json();
        }""",
        cid,
    )
    user = next(m for m in stored["messages"] if m["role"] == "user")
    assert "web" not in user["sources"]


def test_web_chip_with_a_provider_is_on(page: Page, web_modes: VedikaServer) -> None:
    open_home(page, web_modes)
    chip = page.get_by_test_id("source-web")
    expect(chip).to_have_attribute("aria-pressed", "true")
    expect(chip).not_to_have_attribute("aria-disabled", "true")
    expect(chip).to_have_text("Web")
    expect(chip).to_have_attribute("title", "Search the web (searxng)")


def test_the_keyless_provider_cites_pages(page: Page, web_ddg: VedikaServer) -> None:
    open_home(page, web_ddg)
    chip = page.get_by_test_id("source-web")
    expect(chip).to_have_attribute("aria-pressed", "true")
    expect(chip).to_have_attribute("title", "Search the web (duckduckgo)")
    pick_model(page, "fake-steady")
    send(page, "How deep is Lake Veyra?")
    page.wait_for_url(CHAT_URL)
    wait_status(page, "complete")
    card = assistants(page).last.get_by_test_id("source-card").filter(has_text="Lake Veyra")
    expect(card.locator(".source-title")).to_have_text("Lake Veyra: facts for visitors")
