// Branches on the chat page (issue 18; docs/pages.md "Branches"): the `< 2/3 >`
// navigation between the versions of a message (edited questions, regenerated
// answers), the Edit action and the inline editor of a question, and switching the
// branch shown through POST /ai/conversations/{id}/active.

import { request } from "./api.js";
import { el, icon } from "./util.js";

/** The `< 2/3 >` group of a message with siblings, or null. */
export function branchNav(message) {
  const count = message.sibling_count || 1;
  const ids = message.sibling_ids || [];
  if (count < 2 || ids.length !== count) return null;
  const index = Math.max(0, message.sibling_index || 0);
  const kind = message.role === "user" ? "question" : "answer";
  const step = (target, label, glyph, testid) => {
    const button = el("button", {
      type: "button",
      class: "btn-ghost btn-xs branch-step",
      "aria-label": label,
      dataset: { action: "branch", target: target || "", step: testid, testid },
    }, glyph);
    button.disabled = !target;
    return button;
  };
  return el(
    "div",
    { class: "branch-nav", role: "group", "aria-label": `Versions of this ${kind}`, dataset: { testid: "branch-nav" } },
    step(ids[index - 1], "Previous version", "‹", "branch-prev"),
    el(
      "span",
      { class: "branch-count", "aria-live": "polite", "aria-atomic": "true", dataset: { testid: "branch-count" } },
      el("span", { class: "sr-only", text: `${kind} version ` }),
      `${index + 1}/${count}`,
    ),
    step(ids[index + 1], "Next version", "›", "branch-next"),
  );
}

/** Add the branch controls to a message's node: the navigation, and Edit on a question. */
export function decorate(node, message) {
  const nav = branchNav(message);
  if (message.role === "assistant") {
    if (nav) node.querySelector(".msg-actions")?.before(nav);
    return;
  }
  if (!message.message_id) return; // not stored yet (a blocking turn)
  // An icon (and its name for assistive technology): the question's text stays the
  // article's only text.
  const edit = el(
    "button",
    { type: "button", class: "btn-ghost btn-xs", title: "Edit", "aria-label": "Edit question", dataset: { action: "edit", testid: "edit-button" } },
    icon("pencil"),
  );
  node.append(el("div", { class: "msg-branch" }, nav, edit));
}

/** Replace a question's bubble with an editor; `onSubmit(text)` sends the edit. */
export function openEditor(article, { onSubmit }) {
  if (article.querySelector(".branch-editor")) return;
  const bubble = article.querySelector(".msg-bubble");
  const tools = article.querySelector(".msg-branch");
  const area = el("textarea", { class: "branch-editor-text", rows: "3", "aria-label": "Edit your question", dataset: { testid: "edit-input" } });
  area.value = bubble?.textContent || "";
  const close = () => {
    form.remove();
    if (bubble) bubble.hidden = false;
    if (tools) tools.hidden = false;
    article.querySelector("[data-action=edit]")?.focus();
  };
  const form = el(
    "form",
    { class: "branch-editor", "aria-label": "Edit your question", dataset: { testid: "edit-form" } },
    area,
    el(
      "div",
      { class: "branch-editor-actions" },
      el("button", { type: "button", class: "btn-ghost btn-xs", dataset: { testid: "edit-cancel" }, on: { click: close } }, "Cancel"),
      el("button", { type: "submit", class: "btn-accent btn-xs", dataset: { testid: "edit-submit" } }, "Send as a new version"),
    ),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = area.value.trim();
    if (!text) return;
    form.remove();
    if (bubble) bubble.hidden = false;
    if (tools) tools.hidden = false;
    onSubmit(text);
  });
  area.addEventListener("keydown", (event) => {
    if (event.key === "Escape") close();
    else if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  if (bubble) bubble.hidden = true;
  if (tools) tools.hidden = true;
  article.append(form);
  area.focus();
  area.setSelectionRange(area.value.length, area.value.length);
}

/** Show the branch through `messageId`; resolves to the conversation's new path. */
export function switchBranch(conversationId, messageId) {
  return request("POST", `/ai/conversations/${encodeURIComponent(conversationId)}/active`, {
    body: { message_id: messageId },
  });
}

/** Focus the same control of the version now shown (the list was re-rendered). */
export function refocus(list, messageId, step) {
  const nav = list.querySelector(`[data-message-id="${CSS.escape(messageId)}"] [data-testid=branch-nav]`);
  if (!nav) return;
  const same = nav.querySelector(`[data-step=${step}]`);
  const other = nav.querySelector(`[data-step=${step === "branch-prev" ? "branch-next" : "branch-prev"}]`);
  (same && !same.disabled ? same : other)?.focus();
}
