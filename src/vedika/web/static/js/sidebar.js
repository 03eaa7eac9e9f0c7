// The sidebar: new chat, the device's conversations newest first grouped by day,
// search, rename in place, delete with a confirmation, the open one highlighted; pinned
// ones first, archive and the archived view (issue 18).

import { api } from "./api.js";
import { announce } from "./layout.js";
import { debounce, el, icon } from "./util.js";

const PAGE_SIZE = 50;
const DAY_MS = 86400000;

/** Today, Yesterday, Previous 7 days or Older, in the reader's time zone. */
export function dayGroup(iso, now = new Date()) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "Older";
  const startOfToday = new Date(now.getFullYear(), now.getMonth(), now.getDate()).getTime();
  const t = date.getTime();
  if (t >= startOfToday) return "Today";
  if (t >= startOfToday - DAY_MS) return "Yesterday";
  if (t >= startOfToday - 7 * DAY_MS) return "Previous 7 days";
  return "Older";
}

export class Sidebar {
  constructor(root, { currentId = "", onDeleted } = {}) {
    this.root = root;
    this.currentId = currentId;
    this.onDeleted = onDeleted || (() => {});
    this.listNode = root.querySelector("[data-conversation-list]");
    this.search = root.querySelector("[data-testid=sidebar-search]");
    this.moreButton = root.querySelector("[data-load-more]");
    this.items = [];
    this.cursor = null;
    this.query = "";
    this.loading = 0;
    this.archived = false;
    this.shelf = el("button", { type: "button", class: "btn-ghost btn-xs sidebar-shelf", "aria-pressed": "false", dataset: { testid: "archived-toggle" } }, "Archived chats");
    this.shelf.addEventListener("click", () => this.toggleArchived());
    this.moreButton.after(this.shelf);
    this.search.addEventListener("input", debounce(() => this.load(this.search.value.trim()), 250));
    this.moreButton.addEventListener("click", () => this.loadMore());
  }

  async load(query = this.query) {
    this.query = query;
    const ticket = ++this.loading;
    try {
      const page = await api.conversations({ limit: PAGE_SIZE, q: query || undefined, archived: this.archived || undefined });
      if (ticket !== this.loading) return;
      this.items = page.conversations || [];
      this.cursor = page.next_cursor || null;
      this.render();
    } catch (error) {
      if (ticket !== this.loading) return;
      this.listNode.replaceChildren(el("p", { class: "sidebar-empty", text: `Could not load conversations: ${error.message}` }));
    }
  }

  async loadMore() {
    if (!this.cursor) return;
    const ticket = this.loading;
    const page = await api.conversations({ limit: PAGE_SIZE, q: this.query || undefined, cursor: this.cursor, archived: this.archived || undefined });
    if (ticket !== this.loading) return;
    const seen = new Set(this.items.map((c) => c.conversation_id));
    this.items.push(...(page.conversations || []).filter((c) => !seen.has(c.conversation_id)));
    this.cursor = page.next_cursor || null;
    this.render();
  }

  /** Switch between the conversations and the archived ones. */
  toggleArchived() {
    this.archived = !this.archived;
    this.shelf.textContent = this.archived ? "Back to chats" : "Archived chats";
    this.shelf.setAttribute("aria-pressed", String(this.archived));
    this.load();
  }

  /** Refresh soon (after a new turn) without hammering the server. */
  refreshSoon = debounce(() => this.load(), 300);

  render() {
    this.moreButton.hidden = !this.cursor;
    if (!this.items.length) {
      this.listNode.replaceChildren(
        el("p", { class: "sidebar-empty", text: this.query ? "No conversation matches." : this.archived ? "No archived conversations." : "Your conversations will appear here." }),
      );
      return;
    }
    const groups = new Map();
    for (const conversation of this.items) {
      const name = conversation.pinned ? "Pinned" : dayGroup(conversation.updated_at || conversation.created_at);
      if (!groups.has(name)) groups.set(name, []);
      groups.get(name).push(conversation);
    }
    const sections = [];
    for (const name of ["Pinned", "Today", "Yesterday", "Previous 7 days", "Older"]) {
      const list = groups.get(name);
      if (!list) continue;
      sections.push(
        el(
          "section",
          { class: "conv-group", "aria-label": name },
          el("h2", { class: "conv-group-title", text: name }),
          el("ul", { class: "conv-items" }, list.map((c) => this.#item(c))),
        ),
      );
    }
    this.listNode.replaceChildren(...sections);
  }

  #item(conversation) {
    const id = conversation.conversation_id;
    const title = conversation.title || "New conversation";
    const link = el(
      "a",
      {
        class: "conv-link",
        href: `/chat/${encodeURIComponent(id)}`,
        dataset: { testid: "sidebar-conversation", conversationId: id },
        "aria-current": id === this.currentId ? "page" : false,
        title,
      },
      el("span", { class: "conv-title", text: title }),
    );
    const rename = el("button", { type: "button", class: "icon-btn", "aria-label": `Rename “${title}”`, dataset: { testid: "rename-conversation" } }, icon("pencil"));
    const remove = el("button", { type: "button", class: "icon-btn", "aria-label": `Delete “${title}”`, dataset: { testid: "delete-conversation" } }, icon("trash"));
    const pin = el(
      "button",
      { type: "button", class: "icon-btn", "aria-label": `${conversation.pinned ? "Unpin" : "Pin"} “${title}”`, "aria-pressed": String(Boolean(conversation.pinned)), dataset: { testid: "pin-conversation" } },
      el("span", { class: "conv-glyph", "aria-hidden": "true", text: conversation.pinned ? "◆" : "◇" }),
    );
    const archive = el(
      "button",
      { type: "button", class: "icon-btn", "aria-label": `${conversation.archived ? "Unarchive" : "Archive"} “${title}”`, dataset: { testid: "archive-conversation" } },
      el("span", { class: "conv-glyph", "aria-hidden": "true", text: conversation.archived ? "↥" : "↧" }),
    );
    const item = el("li", { class: "conv-item", dataset: { conversationId: id } }, link, el("span", { class: "conv-actions" }, pin, archive, rename, remove));
    if (id === this.currentId) item.classList.add("current");
    pin.addEventListener("click", () => this.#flag(conversation, { pinned: !conversation.pinned }));
    archive.addEventListener("click", () => this.#flag(conversation, { archived: !conversation.archived }));
    rename.addEventListener("click", () => this.#rename(item, conversation));
    remove.addEventListener("click", () => this.#confirmDelete(item, conversation));
    return item;
  }

  async #flag(conversation, change) {
    try {
      await api.organise(conversation.conversation_id, change);
    } catch {
      return;
    }
    await this.load();
    const moved = "archived" in change ? (change.archived ? "archived" : "back in your chats") : change.pinned ? "pinned" : "unpinned";
    announce(`“${conversation.title || "Conversation"}” ${moved}`);
    const again = this.listNode.querySelector(`.conv-item[data-conversation-id="${CSS.escape(conversation.conversation_id)}"] [data-testid=${"archived" in change ? "archive" : "pin"}-conversation]`);
    (again || this.search).focus();
  }

  #rename(item, conversation) {
    const input = el("input", { class: "conv-rename", type: "text", maxlength: "200", "aria-label": "New title", dataset: { testid: "rename-input" } });
    input.value = conversation.title || "";
    item.replaceChildren(input);
    input.focus();
    input.select();
    let done = false;
    const finish = async (save) => {
      if (done) return;
      done = true;
      const title = input.value.trim();
      if (save && title && title !== conversation.title) {
        try {
          const updated = await api.rename(conversation.conversation_id, title);
          conversation.title = updated?.title || title;
        } catch {
          /* keep the old title */
        }
      }
      item.replaceWith(this.#item(conversation));
      if (conversation.conversation_id === this.currentId) document.dispatchEvent(new CustomEvent("vedika:renamed", { detail: conversation }));
    };
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        finish(true);
      } else if (event.key === "Escape") {
        event.preventDefault();
        finish(false);
      }
    });
    input.addEventListener("blur", () => finish(true));
  }

  #confirmDelete(item, conversation) {
    const original = [...item.childNodes];
    const yes = el("button", { type: "button", class: "btn-danger btn-xs", dataset: { testid: "confirm-delete" } }, "Delete");
    const no = el("button", { type: "button", class: "btn-ghost btn-xs" }, "Cancel");
    item.replaceChildren(el("div", { class: "conv-confirm", role: "group", "aria-label": "Confirm delete" }, el("span", { text: "Delete this chat?" }), yes, no));
    no.focus();
    no.addEventListener("click", () => item.replaceChildren(...original));
    item.addEventListener("keydown", (event) => event.key === "Escape" && item.replaceChildren(...original));
    yes.addEventListener("click", async () => {
      try {
        await api.remove(conversation.conversation_id);
      } catch (error) {
        if (error.status !== 404) {
          item.replaceChildren(...original);
          return;
        }
      }
      this.items = this.items.filter((c) => c.conversation_id !== conversation.conversation_id);
      this.render();
      this.onDeleted(conversation.conversation_id);
    });
  }
}
