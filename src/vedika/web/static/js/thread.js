// The list of messages on the chat page and its scroll position.
// It follows the bottom while the reader is at the bottom, and leaves them alone
// when they have scrolled up to read.

import { el } from "./util.js";
import { AssistantView } from "./assistant-view.js";
import { decorate } from "./branches.js";

const STICK_PX = 80;

function userNode(message) {
  return el(
    "article",
    { class: "msg msg-user", dataset: { testid: "message-user", messageId: message.message_id || "" } },
    el("div", { class: "msg-bubble", text: message.content || "" }),
  );
}

export class Thread {
  constructor(list, scroller) {
    this.list = list;
    this.scroller = scroller;
    this.views = new Map(); // message_id -> AssistantView
    this.order = []; // [{role, message_id, content}] as shown
    this.stuck = true;
    scroller.addEventListener("scroll", () => {
      this.stuck = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < STICK_PX;
    }, { passive: true });
    list.addEventListener("vedika:grew", () => this.follow());
  }

  /** Replace everything with `messages` (from GET /ai/conversations/{id}). */
  renderAll(messages) {
    const fragment = document.createDocumentFragment();
    this.views.clear();
    this.order = [];
    for (const message of messages) fragment.append(this.#nodeFor(message));
    this.list.replaceChildren(fragment);
    this.#markLast();
    this.stuck = true;
    this.follow();
    // Messages off screen are laid out at an estimated height (content-visibility), so
    // the bottom moves once those now in view have their real one: end on the last.
    this.list.lastElementChild?.scrollIntoView({ block: "end" });
  }

  #nodeFor(message) {
    this.order.push({ role: message.role, message_id: message.message_id, content: message.content });
    if (message.role === "assistant") {
      const view = new AssistantView(message);
      this.views.set(message.message_id, view);
      decorate(view.root, message);
      return view.root;
    }
    const node = userNode(message);
    decorate(node, message);
    return node;
  }

  append(message) {
    const node = this.#nodeFor(message);
    this.list.append(node);
    this.#markLast();
    this.stuck = true;
    this.follow();
    return message.role === "assistant" ? this.views.get(message.message_id) : node;
  }

  #markLast() {
    const last = this.lastAssistant();
    for (const view of this.views.values()) view.setLast(view === last);
  }

  lastAssistant() {
    for (let i = this.order.length - 1; i >= 0; i -= 1) {
      if (this.order[i].role === "assistant") return this.views.get(this.order[i].message_id);
    }
    return null;
  }

  /** Give a provisional assistant message its stored id (after a blocking answer). */
  adopt(provisionalId, messageId) {
    const view = this.views.get(provisionalId);
    if (!view || !messageId) return;
    this.views.delete(provisionalId);
    view.rebind(messageId);
    this.views.set(messageId, view);
    const entry = this.order.find((m) => m.message_id === provisionalId);
    if (entry) entry.message_id = messageId;
  }

  view(messageId) {
    return this.views.get(messageId) || null;
  }

  /** The user question an assistant message answers. */
  questionFor(messageId) {
    const at = this.order.findIndex((m) => m.message_id === messageId);
    for (let i = (at === -1 ? this.order.length : at) - 1; i >= 0; i -= 1) {
      if (this.order[i].role === "user") return this.order[i].content;
    }
    return null;
  }

  follow() {
    if (this.stuck) this.scroller.scrollTop = this.scroller.scrollHeight;
  }
}
