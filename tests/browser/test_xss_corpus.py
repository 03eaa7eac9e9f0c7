"""Sixty XSS payloads through model output, questions and conversation titles, in the
real browser: nothing executes, nothing active lands in the DOM."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from tests.support.server import VedikaServer
from tests.support.xss import PAYLOADS

ACTIVE = (
    "script",
    "iframe",
    "object",
    "embed",
    "frame",
    "frameset",
    "base",
    "meta",
    "link",
    "form",
    "style",
)


def assert_inert(page: Page, scope: str, allow: tuple[str, ...] = ()) -> None:
    assert page.evaluate("() => window.__xss") is None
    for tag in set(ACTIVE) - set(allow):
        assert page.locator(f"{scope} {tag}").count() == 0, (scope, tag)
    handlers = page.evaluate(
        """(scope) => [...document.querySelectorAll(scope + ' *')].flatMap((el) =>
             [...el.attributes].filter((a) => /^on/i.test(a.name) || a.name === 'srcdoc'
               || (/^(href|src|action|formaction|xlink:href|background)$/i.test(a.name)
                   && /^\\s*(javascript|data|vbscript):/i.test(a.value)))
             .map((a) => el.tagName + ' ' + a.name + '=' + a.value))""",
        scope,
    )
    assert handlers == [], handlers


def test_xss_corpus_is_inert(page: Page, web: VedikaServer) -> None:
    page.goto(web.url + "/")
    page.wait_for_selector("body.ready")
    session_id = page.evaluate("() => localStorage.getItem('vedika.session_id')")
    with httpx.Client(
        base_url=web.url, timeout=30, headers={"Authorization": f"Bearer {session_id}"}
    ) as api:
        conversation_id = None
        for payload in PAYLOADS:  # one conversation holding every payload, twice over
            body = {"message": payload, "model_id": "fake-fast"}
            if conversation_id:
                body["conversation_id"] = conversation_id
            r = api.post("/ai/chat", json=body)
            assert r.status_code == 200, r.text
            conversation_id = r.json()["conversation_id"]
        for payload in PAYLOADS[:30]:  # titles in the sidebar
            r = api.post("/ai/chat", json={"message": payload, "model_id": "fake-fast"})
            assert r.status_code == 200, r.text
        r = api.post("/ai/chat", json={"message": "renamed", "model_id": "fake-fast"})
        renamed = r.json()["conversation_id"]
        api.patch(f"/ai/conversations/{renamed}", json={"title": PAYLOADS[2]})

    page.goto(f"{web.url}/chat/{conversation_id}")
    page.wait_for_selector("body.ready")
    expect(page.locator("[data-thread] .msg")).to_have_count(2 * len(PAYLOADS))
    page.wait_for_timeout(500)  # give any onerror/onload a chance to fire
    assert_inert(page, "[data-thread]")
    assert_inert(page, "#sidebar")
    assert_inert(page, "body", allow=("form",))  # the page's own chatbox is a form
    # The payloads are shown as text: the first user message reads exactly as typed.
    first = page.get_by_test_id("message-user").first
    assert PAYLOADS[0] in (first.text_content() or "")
    sidebar = page.get_by_test_id("sidebar-conversation")
    expect(sidebar.first).to_be_visible()
    assert sidebar.count() >= 30
    assert any("<img src=x onerror" in t for t in sidebar.all_inner_texts())
    assert page.evaluate("() => window.__xss") is None


def test_hostile_page_titles_snippets_and_file_names_are_inert(
    page: Page, web_modes: VedikaServer
) -> None:
    """Web citations from a hostile page (script and handlers in its title and text),
    and attached files whose names are payloads: shown as text, never run."""
    from tests.browser.test_pages import CHAT_URL, open_home, pick_model, send, wait_status

    open_home(page, web_modes)
    pick_model(page, "fake-steady")
    send(page, "tell me about the hostile kite")
    page.wait_for_url(CHAT_URL)
    wait_status(page, "complete")
    cards = page.get_by_test_id("source-card")
    expect(cards.first).to_be_visible()
    titles = " ".join(cards.locator(".source-title").all_text_contents())
    assert "Hostile" in titles  # the hostile page's title is shown, as text
    page.wait_for_timeout(300)
    assert_inert(page, "[data-thread]")

    page.get_by_test_id("source-web").click()  # files only
    names = [PAYLOADS[2] + ".md", PAYLOADS[5] + ".txt", PAYLOADS[20] + ".md"]
    for name in names:
        page.locator("input[type=file]").set_input_files(
            {
                "name": name,
                "mimeType": "text/plain",
                "buffer": b"# Kites\n\nA box kite flies best in steady wind of 15 knots.\n",
            }
        )
    chips = page.get_by_test_id("attachment-chip")
    expect(chips).to_have_count(len(names))
    assert_inert(page, "body", allow=("form",))
    send(page, "What wind does a box kite like?")
    wait_status(page, "complete", count=2)
    page.wait_for_timeout(300)
    shown = " ".join(
        page.get_by_test_id("source-card").locator(".source-title").all_text_contents()
    )
    assert "onerror" in shown  # a payload file name, displayed as its text
    assert_inert(page, "[data-thread]")
    assert_inert(page, "body", allow=("form",))
