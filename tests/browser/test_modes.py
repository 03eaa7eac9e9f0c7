"""Research, Agents, sources and voice in a real Chromium, against a server with the
fake web (SearXNG + pages) and the fake audio endpoints (the `web_modes` fixture).

Speech recognition and synthesis are replaced by scripted fakes where a test needs
them (an init script, under the page's CSP); the fake microphone of Chromium feeds the
recording path.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, Route, expect

from tests.browser.test_pages import (
    CHAT_URL,
    answer_text,
    assistants,
    conversation_link,
    open_home,
    pick_model,
    send,
    stored_conversation,
    wait_chunks,
    wait_status,
)
from tests.support.server import VedikaServer

pytestmark = pytest.mark.browser

QUESTION = "Lake Veyra and the Quillfeather Festival"
NO_RECOGNITION = """
Object.defineProperty(window, "SpeechRecognition", {value: undefined, configurable: true});
Object.defineProperty(window, "webkitSpeechRecognition", {value: undefined, configurable: true});
"""
NO_RECORDER = (
    'Object.defineProperty(window, "MediaRecorder", {value: undefined, configurable: true});'
)

# A scripted speech recognition: each start() "hears" the next phrase of the tab (kept in
# sessionStorage, so it survives the move from home to the chat page), then ends.
FAKE_RECOGNITION = """
(() => {
  if (sessionStorage.getItem("fake.phrases") === null) {
    sessionStorage.setItem("fake.phrases", JSON.stringify(%s));
  }
  class FakeRecognition extends EventTarget {
    start() {
      setTimeout(() => {
        const phrases = JSON.parse(sessionStorage.getItem("fake.phrases"));
        const phrase = phrases.shift();
        sessionStorage.setItem("fake.phrases", JSON.stringify(phrases));
        if (phrase) {
          const event = new Event("result");
          event.results = [[{ transcript: phrase }]];
          this.dispatchEvent(event);
        }
        this.dispatchEvent(new Event("end"));
      }, 150);
    }
    stop() {}
    abort() {}
  }
  for (const name of ["SpeechRecognition", "webkitSpeechRecognition"]) {
    Object.defineProperty(window, name, { value: FakeRecognition, configurable: true });
  }
  window.speechSynthesis.speak = (utterance) => {
    const spoken = JSON.parse(sessionStorage.getItem("fake.spoken") || "[]");
    spoken.push(utterance.text);
    sessionStorage.setItem("fake.spoken", JSON.stringify(spoken));
    setTimeout(() => utterance.dispatchEvent(new Event("end")), 50);
  };
})();
"""


def override_features(context: BrowserContext, **features: Any) -> None:
    """Answer /api/config with some features changed (what another server would say)."""

    def handle(route: Route) -> None:
        response = route.fetch()
        body = response.json()
        body["features"].update(features)
        route.fulfill(response=response, body=json.dumps(body))

    context.route("**/api/config", handle)


def step_statuses(page: Page) -> list[str]:
    return page.get_by_test_id("research-step").evaluate_all(
        "(els) => els.map(e => e.dataset.status)"
    )


# ------------------------------------------------------------------ research


def test_research_shows_live_steps_and_a_cited_report(
    page: Page, web_modes: VedikaServer, artifacts: Path
) -> None:
    open_home(page, web_modes)
    page.get_by_test_id("mode-tab-research").click()
    expect(page.get_by_test_id("chat-input")).to_have_attribute(
        "placeholder", re.compile("Research")
    )
    pick_model(page, "fake-research")
    send(page, QUESTION)
    page.wait_for_url(CHAT_URL)
    answer = assistants(page).last
    expect(answer).to_have_attribute("data-mode", "research")
    expect(answer.get_by_test_id("research-progress")).to_be_visible()
    wait_status(page, "complete")
    answer.get_by_test_id("research-progress").locator("summary").click()
    page.screenshot(path=str(artifacts / "chat-research.png"))

    assert step_statuses(page) == ["done"] * 5
    steps = answer.get_by_test_id("research-step")
    expect(steps.nth(0)).to_have_text("Planned 3 searches")
    expect(steps.nth(1)).to_contain_text(f"What is {QUESTION}?")
    expect(answer.get_by_test_id("research-progress")).to_contain_text(
        re.compile(r"Research · 5 steps · \d+ sources")
    )
    # the report: sections, inline [n] markers linked to numbered source cards
    body = answer.locator(".msg-body")
    expect(body.locator("h2").first).to_have_text("Summary")
    cards = answer.get_by_test_id("source-card")
    assert cards.count() >= 2
    markers = body.get_by_test_id("citation")
    assert markers.count() == cards.count()
    first = markers.first
    target = first.get_attribute("href")
    assert target and target.startswith("#") and answer.locator(target).count() == 1
    expect(answer.locator(target)).to_have_attribute("data-testid", "source-card")
    first.click()
    expect(answer.locator(f"{target}:target")).to_have_count(1)
    veyra = cards.filter(has_text="Lake Veyra: facts for visitors")
    expect(veyra.locator(".source-site")).to_have_text("127.0.0.1")
    expect(veyra.locator("a.source-link")).to_have_attribute(
        "href", re.compile(r"/pages/lake-veyra$")
    )
    expect(veyra.locator("a.source-link")).to_have_attribute("rel", "noopener noreferrer nofollow")
    expect(veyra.locator(".source-snippet")).not_to_be_empty()
    # a step links the sources it found to their cards
    assert steps.nth(1).locator("a.step-source").count() >= 1

    stored = stored_conversation(page, web_modes)["messages"][-1]
    assert stored["mode"] == "research" and len(stored["steps"]) == 5
    assert stored["content"].startswith("## Summary") and "[1]" in stored["content"]

    # from elsewhere, through the sidebar: the steps are there, folded
    conversation_id = page.url.split("#")[0].rsplit("/", 1)[1]
    page.get_by_test_id("new-chat").click()
    page.wait_for_selector("body.ready")
    conversation_link(page, conversation_id).click()
    page.wait_for_url(CHAT_URL)
    progress = assistants(page).last.get_by_test_id("research-progress")
    expect(progress).to_be_visible()
    expect(progress).not_to_have_attribute("open", "")
    progress.locator("summary").click()
    expect(progress.get_by_test_id("research-step").nth(4)).to_be_visible()
    assert step_statuses(page) == ["done"] * 5


def test_research_resumes_after_a_reload_and_stops(page: Page, web_modes: VedikaServer) -> None:
    open_home(page, web_modes)
    page.get_by_test_id("mode-tab-research").click()
    pick_model(page, "fake-research-slow")
    send(page, QUESTION)
    page.wait_for_url(CHAT_URL)
    wait_chunks(page, 3)
    page.reload()
    wait_status(page, "complete", timeout=60_000)
    stored = stored_conversation(page, web_modes)["messages"][-1]
    assert assistants(page).last.locator(".msg-body").inner_text().strip().startswith("Summary")
    assert step_statuses(page) == ["done"] * 5  # nothing doubled by the replay
    expect(assistants(page).last.get_by_test_id("citation").first).to_be_visible()
    assert stored["status"] == "complete"

    # a follow-up, stopped while the report is being written
    send(page, "And the ferry?")
    expect(assistants(page)).to_have_count(2)
    wait_chunks(page, 2)
    page.get_by_test_id("stop-button").click()
    wait_status(page, "stopped", timeout=30_000)
    last = assistants(page).last
    write = last.locator("[data-testid=research-step][data-phase=write]")
    expect(write).to_have_attribute("data-status", "stopped")
    stored = stored_conversation(page, web_modes)["messages"][-1]
    assert stored["status"] == "stopped"


# ------------------------------------------------------------------ agents


def test_agent_steps_are_collapsible_and_survive_a_reload(
    page: Page, web_modes: VedikaServer, artifacts: Path
) -> None:
    open_home(page, web_modes)
    page.get_by_test_id("mode-tab-agents").click()
    pick_model(page, "fake-agent-slow")
    send(page, "How deep is Lake Veyra, and what is 17 * 3?")
    page.wait_for_url(CHAT_URL)
    page.wait_for_selector("[data-testid=agent-step]")
    page.reload()
    wait_status(page, "complete", timeout=60_000)
    answer = assistants(page).last
    expect(answer).to_have_attribute("data-mode", "agents")
    steps = answer.get_by_test_id("agent-step")
    expect(steps).to_have_count(3)
    assert steps.evaluate_all("(els) => els.map(e => [e.dataset.tool, e.dataset.status])") == [
        ["web_search", "ok"],
        ["fetch_url", "ok"],
        ["calculator", "ok"],
    ]
    calc = steps.nth(2)
    expect(calc.get_by_test_id("agent-step-result")).to_be_hidden()  # folded
    calc.locator("summary").click()
    expect(calc.get_by_test_id("agent-step-result")).to_have_text("17 * 3 = 51")
    expect(calc.get_by_test_id("agent-step-arguments")).to_contain_text('"expression": "17 * 3"')
    page.screenshot(path=str(artifacts / "chat-agents.png"))
    expect(answer.get_by_test_id("agent-steps")).to_contain_text("Tools used · 3 steps")
    assert answer_text(page).endswith("the last one said: 17 * 3 = 51")
    expect(answer.get_by_test_id("source-card").first).to_contain_text("Lake Veyra")


def test_failing_tools_show_as_errors(page: Page, web_modes: VedikaServer) -> None:
    open_home(page, web_modes)
    page.get_by_test_id("mode-tab-agents").click()
    pick_model(page, "fake-agent-fail")
    send(page, "break things")
    page.wait_for_url(CHAT_URL)
    wait_status(page, "complete")
    steps = assistants(page).last.get_by_test_id("agent-step")
    expect(steps).to_have_count(4)
    assert set(steps.evaluate_all("(els) => els.map(e => e.dataset.status)")) == {"error"}
    assert answer_text(page).endswith("4 of 4 tool calls failed.")


# ------------------------------------------------------------------ sources


def test_web_and_file_sources_show_as_cards(page: Page, web_modes: VedikaServer) -> None:
    open_home(page, web_modes)
    expect(page.get_by_test_id("source-web")).to_have_attribute("aria-pressed", "true")
    pick_model(page, "fake-steady")
    send(page, "How deep is Lake Veyra?")
    page.wait_for_url(CHAT_URL)
    wait_status(page, "complete")
    card = assistants(page).last.get_by_test_id("source-card").filter(has_text="Lake Veyra")
    expect(card.locator(".source-title")).to_have_text("Lake Veyra: facts for visitors")
    expect(card.locator(".source-snippet")).to_contain_text("312 metres")

    # Attach: POST /files, a chip, then a card naming the file
    page.get_by_test_id("source-web").click()  # files only
    page.locator("input[type=file]").set_input_files(
        {
            "name": "herons.md",
            "mimeType": "text/markdown",
            "buffer": b"# Herons\n\nThe grey heron of Orsk nests in April, in tall alders.\n",
        }
    )
    chip = page.get_by_test_id("attachment-chip")
    expect(chip).to_contain_text("herons.md")
    expect(chip).to_have_class(re.compile("ready"))
    send(page, "When does the grey heron nest?")
    wait_status(page, "complete", count=2)
    card = assistants(page).last.get_by_test_id("source-card")
    expect(card).to_have_count(1)
    expect(card.locator(".source-title")).to_have_text("herons.md")
    expect(card.locator(".source-site")).to_have_text("Attached file")
    expect(card.locator("a")).to_have_count(0)  # a file has no link
    expect(page.get_by_test_id("attachment-chip")).to_have_count(0)
    user = stored_conversation(page, web_modes)["messages"][-2]
    assert user["sources"] == ["files"] and len(user["attachments"]) == 1


# ------------------------------------------------------------------ dictation and voice


def test_dictation_button_follows_browser_support(
    context: BrowserContext, page: Page, web_modes: VedikaServer
) -> None:
    # Chromium has speech recognition: the button uses it
    open_home(page, web_modes)
    button = page.get_by_test_id("dictation-button")
    expect(button).to_be_visible()
    expect(button).to_have_attribute("data-engine", "browser")

    # no recognition, but the server transcribes: record, then POST /ai/transcribe
    context.add_init_script(NO_RECOGNITION)
    with page.expect_response("**/api/config"):
        open_home(page, web_modes)
    expect(button).to_have_attribute("data-engine", "server")
    expect(button).to_be_visible()
    button.click()
    expect(button).to_have_attribute("aria-pressed", "true")
    page.wait_for_timeout(800)  # some of the fake microphone's beep
    with page.expect_response("**/ai/transcribe") as response:
        button.click()
    assert response.value.status == 200
    expect(page.get_by_test_id("chat-input")).to_have_value(
        re.compile(r"^fake transcription of \d+ bytes$")
    )
    expect(button).to_have_attribute("aria-pressed", "false")
    pick_model(page, "fake-fast")
    page.get_by_test_id("send-button").click()
    page.wait_for_url(CHAT_URL)
    wait_status(page, "complete")
    assert stored_conversation(page, web_modes)["messages"][0]["interaction_mode"] == "dictation"

    # no recognition and a server that does not transcribe: no button
    override_features(context, transcription=False)
    with page.expect_response("**/api/config"):
        open_home(page, web_modes)
    page.wait_for_timeout(200)
    expect(button).to_be_hidden()
    expect(page.get_by_test_id("voice-button")).to_be_hidden()


def test_no_recorder_no_button(
    context: BrowserContext, page: Page, web_modes: VedikaServer
) -> None:
    context.add_init_script(NO_RECOGNITION + NO_RECORDER)
    with page.expect_response("**/api/config"):
        open_home(page, web_modes)
    page.wait_for_timeout(200)
    expect(page.get_by_test_id("dictation-button")).to_be_hidden()


@pytest.mark.parametrize("speech", ["server", "browser"])
def test_voice_mode_talks_and_listens(
    context: BrowserContext, page: Page, web_modes: VedikaServer, speech: str
) -> None:
    phrases = ["What is Lake Veyra?", "And the ferry?"]
    context.add_init_script(FAKE_RECOGNITION % json.dumps(phrases))
    if speech == "browser":
        override_features(context, speech=False)
    spoken_by_server: list[str] = []
    page.on(
        "request",
        lambda r: (
            spoken_by_server.append(r.post_data_json["text"])
            if r.url.endswith("/ai/speech")
            else None
        ),
    )
    open_home(page, web_modes)
    pick_model(page, "fake-fast")
    voice = page.get_by_test_id("voice-button")
    expect(voice).to_be_visible()
    voice.click()
    page.wait_for_url(CHAT_URL)
    wait_status(page, "complete", count=2, timeout=30_000)
    # nothing more is heard: voice mode pauses and says so
    expect(page.locator("[data-chat-notice]")).to_contain_text("Voice mode paused")
    expect(voice).to_have_attribute("aria-pressed", "false")

    messages = stored_conversation(page, web_modes)["messages"]
    assert [m["content"] for m in messages if m["role"] == "user"] == phrases
    assert {m["interaction_mode"] for m in messages} == {"voice"}
    spoken = (
        spoken_by_server
        if speech == "server"
        else json.loads(page.evaluate("() => sessionStorage.getItem('fake.spoken')"))
    )
    assert len(spoken) == 2
    assert spoken[0].startswith("Answer to: What is Lake Veyra?")
    assert spoken[1].startswith("Answer to: And the ferry?")
