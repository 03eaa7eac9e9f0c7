"""axe-core (WCAG 2.0/2.1 A and AA, best practice) over every page and state: 0 violations.

Each test opens a page in one state (home empty or with a menu open, a chat page while
streaming and finished, Research and Agents steps, the sidebar with conversations, an
error, the 404 page, the API docs) and runs ``assert_no_violations`` on it, in the dark
and the light colour scheme where the page has both.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.axe import assert_no_violations
from tests.browser.conftest import PageProbe
from tests.browser.test_pages import (
    CHAT_URL,
    assistants,
    open_home,
    pick_model,
    send,
    wait_chunks,
    wait_status,
)
from tests.support.server import VedikaServer

pytestmark = pytest.mark.browser

SCHEMES = ["dark", "light"]


@pytest.fixture(params=SCHEMES)
def scheme(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def themed(browser: Browser, probe: PageProbe, scheme: str) -> Page:
    """A page in its own context with the colour scheme emulated."""
    context: BrowserContext = browser.new_context(
        viewport={"width": 1280, "height": 800},
        color_scheme=scheme,  # type: ignore[arg-type]
    )
    context.set_default_timeout(15_000)
    page = probe.attach(context.new_page())
    page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
    yield page  # type: ignore[misc]
    context.close()
    assert probe.page_errors == [], f"uncaught errors in the page: {probe.page_errors}"


def test_axe_finds_a_planted_violation(page: Page, web: VedikaServer) -> None:
    """The check itself works: an image without a name is reported, with its target."""
    open_home(page, web)
    page.evaluate(
        """() => {
            const i = document.createElement('img');
            i.id = 'planted';
            i.src = 'data:image/gif;base64,R0lGODlhAQABAAAAACw=';
            document.querySelector('main').append(i);
        }"""
    )
    with pytest.raises(AssertionError) as failure:
        assert_no_violations(page)
    assert "image-alt" in str(failure.value) and "#planted" in str(failure.value)
    page.evaluate("() => document.getElementById('planted').remove()")
    assert_no_violations(page)


def test_home(themed: Page, web: VedikaServer, scheme: str) -> None:
    page = themed
    open_home(page, web)
    light = page.evaluate("() => matchMedia('(prefers-color-scheme: light)').matches")
    assert light == (scheme == "light")  # the scheme under test is the one emulated
    assert_no_violations(page, state=f"home ({scheme})")
    # the model menu open
    page.get_by_test_id("model-dropdown").click()
    expect(page.get_by_test_id("model-dropdown")).to_have_attribute("aria-expanded", "true")
    assert_no_violations(page, state=f"home, model menu open ({scheme})")
    page.keyboard.press("Escape")
    # the other modes and the sources toggled
    page.get_by_test_id("mode-tab-research").click()
    expect(page.get_by_test_id("mode-tab-research")).to_have_attribute("aria-selected", "true")
    # no web search on this server: the Web toggle shows as unavailable
    expect(page.get_by_test_id("source-web")).to_have_attribute("aria-disabled", "true")
    assert_no_violations(page, state=f"home, research, web unavailable ({scheme})")
    page.get_by_test_id("mode-tab-agents").click()
    page.get_by_test_id("chat-input").fill("a question typed")
    assert_no_violations(page, state=f"home, agents, typed ({scheme})")


def test_home_with_web_search_and_an_attached_file(
    themed: Page, web_modes: VedikaServer, scheme: str
) -> None:
    page = themed
    open_home(page, web_modes)
    expect(page.get_by_test_id("source-web")).to_have_attribute("aria-pressed", "true")
    page.get_by_test_id("source-web").click()
    expect(page.get_by_test_id("source-web")).to_have_attribute("aria-pressed", "false")
    page.locator("input[type=file]").set_input_files(
        {"name": "herons.md", "mimeType": "text/markdown", "buffer": b"# Herons\n\nAlders.\n"}
    )
    expect(page.get_by_test_id("attachment-chip")).to_have_class(re.compile("ready"))
    assert_no_violations(page, state=f"home, web off, a file attached ({scheme})")
    # the model menu opened from the keyboard: focus in the list, an active option
    page.get_by_test_id("model-dropdown").focus()
    page.keyboard.press("ArrowDown")
    expect(page.get_by_test_id("model-dropdown")).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("ArrowDown")
    assert_no_violations(page, state=f"home, model menu from the keyboard ({scheme})")


def test_chat_streaming_and_finished(themed: Page, web: VedikaServer, scheme: str) -> None:
    page = themed
    open_home(page, web)
    pick_model(page, "fake-slow")
    send(page, "a long story about the sea")
    page.wait_for_url(CHAT_URL)
    wait_chunks(page, 3)
    assert_no_violations(page, state=f"chat streaming ({scheme})")
    page.get_by_test_id("stop-button").click()
    wait_status(page, "stopped")
    assert_no_violations(page, state=f"chat stopped ({scheme})")
    pick_model(page, "fake-markdown")
    send(page, "some markdown please")
    wait_status(page, "complete")
    assert_no_violations(page, state=f"chat finished, markdown ({scheme})")


def test_chat_error_shown(themed: Page, web: VedikaServer, scheme: str) -> None:
    page = themed
    open_home(page, web)
    pick_model(page, "fake-error-event")
    send(page, "this one fails")
    page.wait_for_url(CHAT_URL)
    expect(page.get_by_test_id("retry-button")).to_be_visible(timeout=20_000)
    assert_no_violations(page, state=f"chat with an error ({scheme})")


def test_sidebar_with_conversations(themed: Page, web: VedikaServer, scheme: str) -> None:
    page = themed
    open_home(page, web)
    pick_model(page, "fake-fast")
    for question in ("first question", "second question"):
        open_home(page, web)
        send(page, question)
        page.wait_for_url(CHAT_URL)
        wait_status(page, "complete")
    expect(page.get_by_test_id("sidebar-conversation")).to_have_count(2)
    assert_no_violations(page, state=f"sidebar with conversations ({scheme})")
    page.get_by_test_id("sidebar-conversation").first.hover()
    page.get_by_test_id("rename-conversation").first.click()
    assert_no_violations(page, state=f"sidebar renaming ({scheme})")
    page.keyboard.press("Escape")
    # the mobile sidebar, open over the page
    page.set_viewport_size({"width": 390, "height": 800})
    page.get_by_test_id("burger").click()
    expect(page.get_by_test_id("burger")).to_have_attribute("aria-expanded", "true")
    assert_no_violations(page, state=f"mobile sidebar open ({scheme})")


def test_research_steps_and_sources(themed: Page, web_modes: VedikaServer, scheme: str) -> None:
    page = themed
    open_home(page, web_modes)
    page.get_by_test_id("mode-tab-research").click()
    pick_model(page, "fake-research")
    send(page, "Lake Veyra and the Quillfeather Festival")
    page.wait_for_url(CHAT_URL)
    wait_status(page, "complete")
    assistants(page).last.get_by_test_id("research-progress").locator("summary").click()
    assert_no_violations(page, state=f"research report with sources ({scheme})")


def test_agent_steps(themed: Page, web_modes: VedikaServer, scheme: str) -> None:
    page = themed
    open_home(page, web_modes)
    page.get_by_test_id("mode-tab-agents").click()
    pick_model(page, "fake-agent-fail")
    send(page, "use the tools")
    page.wait_for_url(CHAT_URL)
    wait_status(page, "complete")
    assert_no_violations(page, state=f"agent steps ({scheme})")


def test_not_found_page(themed: Page, web: VedikaServer, scheme: str) -> None:
    page = themed
    response = page.goto(web.url + "/chat/" + "x" * 65)  # not a conversation id
    assert response is not None and response.status == 404
    page.wait_for_selector("body.ready")
    expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
    assert_no_violations(page, state=f"404 ({scheme})")


def test_unknown_conversation(themed: Page, web: VedikaServer, scheme: str) -> None:
    """A well-formed id that is nobody's: the chat page says so."""
    page = themed
    page.goto(web.url + "/chat/nosuchconversation")
    page.wait_for_selector("body.ready")
    assert_no_violations(page, state=f"unknown conversation ({scheme})")


def test_api_docs(themed: Page, web: VedikaServer, scheme: str) -> None:
    page = themed
    page.goto(web.url + "/docs")
    page.wait_for_selector(".swagger-ui .opblock", timeout=20_000)
    assert_no_violations(page, state=f"/docs ({scheme})")
