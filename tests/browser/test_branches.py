"""Edit and branch on the chat page (issue 18), in Chromium against a real server.

Edit a question (two branches), regenerate the answer (three sibling answers),
navigate the versions with the keyboard-reachable `< 2/3 >` buttons, continue from the
first branch, reload: the branch shown is kept. The screenshot of the three-version
conversation goes to docs/screenshot-branches.png when VEDIKA_SCREENSHOTS is set.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.axe import assert_no_violations
from tests.browser.test_pages import (
    CHAT_URL,
    answer_text,
    assistants,
    expected,
    open_home,
    pick_model,
    send,
    stored_conversation,
    wait_status,
)
from tests.support.server import VedikaServer

pytestmark = pytest.mark.browser

DOCS = Path(__file__).resolve().parents[2] / "docs"


def questions(page: Page) -> Locator:
    return page.get_by_test_id("message-user")


def count_of(scope: Locator) -> Locator:
    return scope.get_by_test_id("branch-count")


def settled(page: Page) -> None:
    """No answer streaming, and the send box usable again."""
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=message-assistant][data-status=streaming]')"
    )


def test_edit_regenerate_navigate_continue(page: Page, web: VedikaServer, artifacts: Path) -> None:
    open_home(page, web)
    pick_model(page, "fake-fast")
    send(page, "first question")
    page.wait_for_url(CHAT_URL)
    wait_status(page, "complete")
    send(page, "second question")
    wait_status(page, "complete", count=2)
    settled(page)

    # Edit the second question: a second branch with its own answer.
    second = questions(page).nth(1)
    second.get_by_test_id("edit-button").click()
    editor = second.get_by_test_id("edit-input")
    expect(editor).to_be_focused()
    expect(editor).to_have_value("second question")
    assert_no_violations(page, state="chat page, a question being edited")
    editor.fill("second question, edited")
    second.get_by_test_id("edit-submit").click()
    expect(questions(page).nth(1).locator(".msg-bubble")).to_have_text("second question, edited")
    wait_status(page, "complete", count=2)
    settled(page)
    expect(count_of(questions(page).nth(1))).to_have_text("question version 2/2")
    assert answer_text(page) == expected("fake-fast", "second question, edited")
    expect(questions(page)).to_have_count(2)

    # Regenerate twice: three sibling answers to the edited question.
    for n in (2, 3):
        assistants(page).last.get_by_test_id("regenerate-button").click()
        expect(count_of(assistants(page).last)).to_have_text(f"answer version {n}/{n}")
        wait_status(page, "complete", count=2)
        settled(page)
    expect(assistants(page)).to_have_count(2)
    stored = stored_conversation(page, web)
    assert [m["sibling_count"] for m in stored["messages"]] == [1, 1, 2, 3]
    page.screenshot(path=str(artifacts / "branches.png"))
    if os.environ.get("VEDIKA_SCREENSHOTS"):
        page.screenshot(path=str(DOCS / "screenshot-branches.png"))

    # Navigate the answers with the keyboard; the count is a live region.
    last = assistants(page).last
    expect(count_of(last)).to_have_attribute("aria-live", "polite")
    expect(last.get_by_label("Next version")).to_be_disabled()
    last.get_by_label("Previous version").focus()
    page.keyboard.press("Enter")
    expect(count_of(assistants(page).last)).to_have_text("answer version 2/3")
    expect(assistants(page).last.get_by_label("Previous version")).to_be_focused()
    page.keyboard.press("Enter")
    expect(count_of(assistants(page).last)).to_have_text("answer version 1/3")
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        assert_no_violations(
            page, state=f"chat page, versions of a question and an answer, {scheme}"
        )

    # Back to the first branch: the original second question and its answer.
    questions(page).nth(1).get_by_label("Previous version").click()
    expect(count_of(questions(page).nth(1))).to_have_text("question version 1/2")
    expect(questions(page).nth(1).locator(".msg-bubble")).to_have_text("second question")
    assert answer_text(page) == expected("fake-fast", "second question")

    # Continue from the branch shown.
    send(page, "third question")
    wait_status(page, "complete", count=3)
    settled(page)
    expect(questions(page)).to_have_count(3)
    stored = stored_conversation(page, web)
    assert [m["content"] for m in stored["messages"] if m["role"] == "user"] == [
        "first question",
        "second question",
        "third question",
    ]

    # A reload shows the same branch.
    page.reload()
    page.wait_for_selector("body.ready")
    expect(questions(page)).to_have_count(3)
    expect(questions(page).nth(1).locator(".msg-bubble")).to_have_text("second question")
    expect(count_of(questions(page).nth(1))).to_have_text("question version 1/2")
    assert answer_text(page) == expected("fake-fast", "third question")
