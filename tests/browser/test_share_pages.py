"""Share, export, pin, archive and search in Chromium (issue 18). The shared page is read
with JavaScript disabled: it is server-rendered and must read without it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, Page, expect

from tests.browser.axe import assert_no_violations
from tests.browser.conftest import PageProbe
from tests.support.server import VedikaServer

ANSWER = (
    "Lake Veyra is **312 metres** deep [1], the deepest lake of the range [2].\n\n"
    "- It freezes in January.\n- It is fed by three rivers."
)
CITATIONS = [
    {
        "index": 1,
        "title": "Lake Veyra survey",
        "url": "https://example.org/veyra",
        "site": "example.org",
    },
    {
        "index": 2,
        "title": "Lakes of the range",
        "url": "https://example.org/lakes",
        "site": "example.org",
    },
]


def session_of(page: Page, web: VedikaServer) -> str:
    page.goto(web.url + "/")
    page.wait_for_selector("body.ready")
    return str(page.evaluate("() => localStorage.getItem('vedika.session_id')"))


def seed(web: VedikaServer, session: str, title: str, *answers: str, **first: Any) -> str:
    messages: list[dict[str, Any]] = [{"role": "user", "content": f"Tell me about {title}"}]
    messages += [{"role": "assistant", "content": a} | first for a in answers]
    r = httpx.post(
        f"{web.url}/ai/conversations/import",
        json={"format": "vedika.conversation", "version": 1, "title": title, "messages": messages},
        headers={"Authorization": f"Bearer {session}"},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["conversation_id"])


def test_share_then_read_without_javascript_then_revoke(
    page: Page, web: VedikaServer, browser: Browser, artifacts: Path
) -> None:
    session = session_of(page, web)
    cid = seed(web, session, "Lake Veyra", ANSWER, citations=CITATIONS, model="fake-fast")
    page.goto(f"{web.url}/chat/{cid}")
    page.wait_for_selector("body.ready")
    opener = page.get_by_test_id("share-open")
    expect(opener).to_be_visible()
    opener.click()
    dialog = page.get_by_test_id("share-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_have_attribute("aria-labelledby", "share-dialog-title")
    expect(dialog.get_by_role("status")).to_contain_text("not shared")
    page.get_by_test_id("share-create").click()
    url_box = page.get_by_test_id("share-url")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=share-url]').value.includes('/s/')"
    )
    link = url_box.input_value()
    expect(page.get_by_test_id("share-revoke")).to_be_visible()
    expect(dialog.get_by_role("status")).to_contain_text("Link ready")

    reader = browser.new_context(java_script_enabled=False, viewport={"width": 900, "height": 900})
    try:
        shared = reader.new_page()
        response = shared.goto(link)
        assert response is not None and response.status == 200
        expect(shared.get_by_test_id("shared-title")).to_have_text("Lake Veyra")
        expect(shared.get_by_test_id("shared-question")).to_contain_text("Tell me about Lake Veyra")
        answer = shared.get_by_test_id("shared-answer")
        expect(answer).to_contain_text("312 metres")
        expect(answer.locator("strong")).to_have_text("312 metres")
        expect(answer.locator("li")).to_have_count(4)  # two bullets, two sources
        sources = shared.get_by_test_id("shared-sources").locator("a")
        expect(sources).to_have_count(2)
        expect(sources.first).to_have_attribute("href", "https://example.org/veyra")
        expect(sources.first).to_have_text("Lake Veyra survey")
        marker = answer.locator("a[href='#m1-source-1']")
        expect(marker).to_have_text("[1]")
        assert shared.locator("script").count() == 0
        robots = shared.locator("meta[name=robots]")
        expect(robots).to_have_attribute("content", "noindex")
        shared.screenshot(path=str(artifacts / "shared-page.png"), full_page=True)

        page.get_by_test_id("share-revoke").click()
        expect(dialog.get_by_role("status")).to_contain_text("revoked")
        expect(page.get_by_test_id("share-url")).to_be_hidden()
        page.get_by_test_id("share-close").click()
        expect(dialog).to_be_hidden()
        expect(opener).to_be_focused()

        gone = shared.goto(link)
        assert gone is not None and gone.status == 410
        expect(shared.get_by_test_id("shared-gone")).to_have_text("This link was revoked")
        expect(shared.get_by_text("312 metres")).to_have_count(0)
    finally:
        reader.close()


def test_export_buttons_download_markdown_and_json(page: Page, web: VedikaServer) -> None:
    session = session_of(page, web)
    cid = seed(web, session, "Exports", ANSWER, citations=CITATIONS)
    page.goto(f"{web.url}/chat/{cid}")
    page.wait_for_selector("body.ready")
    with page.expect_download() as md:
        page.get_by_test_id("export-md").click()
    assert md.value.suggested_filename == "Exports.md"
    text = Path(md.value.path()).read_text()
    assert "deep [^1]" in text and "[^2]: [Lakes of the range]" in text
    with page.expect_download() as js:
        page.get_by_test_id("export-json").click()
    assert js.value.suggested_filename == "Exports.json"
    assert '"format":"vedika.conversation"' in Path(js.value.path()).read_text().replace(" ", "")


def sidebar_titles(page: Page) -> list[str]:
    return [
        t.strip()
        for t in page.locator("[data-testid=sidebar-conversation] .conv-title").all_inner_texts()
    ]


def test_pin_archive_and_search_in_the_sidebar(page: Page, web: VedikaServer) -> None:
    session = session_of(page, web)
    seed(web, session, "Alpha", "Nothing special here.")
    seed(web, session, "Bravo", "Pangolins roll into a ball.")
    seed(web, session, "Charlie", "Comets have tails.")
    page.reload()
    page.wait_for_selector("body.ready")
    expect(page.locator("[data-testid=sidebar-conversation]")).to_have_count(3)
    assert sidebar_titles(page) == ["Charlie", "Bravo", "Alpha"]

    alpha = page.locator(".conv-item", has_text="Alpha")
    alpha.get_by_test_id("pin-conversation").click()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=sidebar-conversation] .conv-title')"
        ".textContent === 'Alpha'"
    )
    assert sidebar_titles(page) == ["Alpha", "Charlie", "Bravo"]
    expect(page.locator(".conv-group", has_text="Pinned")).to_contain_text("Alpha")
    expect(
        page.locator(".conv-item", has_text="Alpha").get_by_test_id("pin-conversation")
    ).to_have_attribute("aria-pressed", "true")

    page.locator(".conv-item", has_text="Charlie").get_by_test_id("archive-conversation").click()
    expect(page.locator("[data-testid=sidebar-conversation]")).to_have_count(2)
    assert "Charlie" not in sidebar_titles(page)
    page.get_by_test_id("archived-toggle").click()
    expect(page.get_by_test_id("archived-toggle")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("[data-testid=sidebar-conversation]")).to_have_count(1)
    assert sidebar_titles(page) == ["Charlie"]
    page.get_by_test_id("archived-toggle").click()
    expect(page.locator("[data-testid=sidebar-conversation]")).to_have_count(2)

    page.get_by_test_id("sidebar-search").fill("pangolin")
    expect(page.locator("[data-testid=sidebar-conversation]")).to_have_count(1)
    assert sidebar_titles(page) == ["Bravo"]  # found by its answer's text


def test_shared_page_and_share_dialog_have_no_axe_violations(
    web: VedikaServer, browser: Browser, probe: PageProbe
) -> None:
    """The chat page with the share dialog open, the shared page and its 410 page, in
    both colour schemes (tests/browser/axe.py; the pages keep their CSP)."""
    checker = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = probe.attach(checker.new_page())
        session = session_of(page, web)
        cid = seed(web, session, "Axe check", ANSWER, citations=CITATIONS, model="fake-fast")
        page.goto(f"{web.url}/chat/{cid}")
        page.wait_for_selector("body.ready")
        page.get_by_test_id("share-open").click()
        dialog = page.get_by_test_id("share-dialog")
        expect(dialog.get_by_role("status")).to_contain_text("not shared")
        page.get_by_test_id("share-create").click()
        expect(page.get_by_test_id("share-revoke")).to_be_visible()
        link = page.get_by_test_id("share-url").input_value()
        assert_no_violations(page, state="chat page, share dialog open")

        for scheme in ("light", "dark"):
            shared = checker.new_page()
            shared.emulate_media(color_scheme=scheme)
            shared.goto(link)
            assert_no_violations(shared, state=f"shared page, {scheme}")
        page.get_by_test_id("share-revoke").click()
        expect(dialog.get_by_role("status")).to_contain_text("revoked")
        for scheme in ("light", "dark"):
            gone = checker.new_page()
            gone.emulate_media(color_scheme=scheme)
            assert (response := gone.goto(link)) is not None and response.status == 410
            assert_no_violations(gone, state=f"revoked link (410), {scheme}")
        assert probe.page_errors == []
    finally:
        checker.close()
