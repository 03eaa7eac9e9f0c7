// One assistant message on the page, from its stored state or its live events.
// Chunks are appended to a string and drawn at most once per animation frame:
// completed markdown blocks are rendered once and appended, only the unfinished
// tail is redrawn. Nothing else on the page is touched per chunk.

import { el, icon } from "./util.js";
import { renderMarkdown } from "./markdown.js";
import { blockBoundary } from "./blocks.js";
import { renderSources, sourceAnchor } from "./sources.js";
import { progress } from "./resume-store.js";
import { StepsView } from "./steps.js";

const SAVE_EVERY_MS = 250;

const STATUS_LABEL = {
  stopped: "Stopped",
  interrupted: "Interrupted",
  error: "Error",
};

export class AssistantView {
  constructor(message) {
    this.id = message.message_id;
    this.text = message.content || "";
    this.last = 0; // last chunk id drawn into `text`
    this.held = null; // a chunk after a jump in the numbers, until the next event says what it is
    this.status = message.status || "complete";
    this.citations = message.citations || [];
    this.mode = message.mode || "search";
    this.error = null;
    this.placeholder = false; // `text` came from REST while streaming: replaced on replay
    this.committed = 0; // chars of `text` rendered as final blocks
    this.frame = 0;
    this.savedAt = 0;
    this.isLast = false;
    this.#build(message);
  }

  #build(message) {
    this.modelNode = el("span", { class: "msg-model" }, message.model_name || message.model || "");
    this.whyNode = el("span", { class: "msg-why" });
    this.sourcesNode = el("ol", { class: "sources", "aria-label": "Sources", hidden: true });
    this.steps = new StepsView({ anchor: (n) => sourceAnchor(this.id, n) });
    this.steps.applyAll(message.steps);
    this.doneNode = el("div", { class: "md-committed" });
    this.tailNode = el("div", { class: "md-tail" });
    this.cursor = el("span", { class: "cursor", "aria-hidden": "true" });
    this.bodyNode = el("div", { class: "msg-body markdown" }, this.doneNode, this.tailNode);
    this.statusNode = el("div", { class: "msg-status", hidden: true });
    this.actionsNode = el("div", { class: "msg-actions" });
    this.root = el(
      "article",
      { class: "msg msg-assistant", dataset: { testid: "message-assistant", messageId: this.id, status: this.status, mode: this.mode } },
      el("div", { class: "msg-avatar", "aria-hidden": "true" }, "V"),
      el("div", { class: "msg-main" }, el("div", { class: "msg-meta" }, this.modelNode, this.whyNode), this.steps.root, this.sourcesNode, this.bodyNode, this.statusNode, this.actionsNode),
    );
    renderSources(this.sourcesNode, this.id, this.citations);
    this.#renderAll();
    this.#renderStatus();
    this.#renderActions();
  }

  // ------------------------------------------------------------ rendering

  #renderOptions() {
    return { citations: this.citations, anchor: (n) => sourceAnchor(this.id, n) };
  }

  #renderAll() {
    this.doneNode.replaceChildren(renderMarkdown(this.text, this.#renderOptions()));
    this.committed = this.text.length;
    this.tailNode.replaceChildren();
    this.root.classList.toggle("is-placeholder", this.placeholder);
    if (this.status === "streaming") this.tailNode.append(this.cursor);
  }

  #schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => this.#flush());
  }

  #flush() {
    this.frame = 0;
    const cut = blockBoundary(this.text, this.committed);
    if (cut > this.committed) {
      this.doneNode.append(renderMarkdown(this.text.slice(this.committed, cut), this.#renderOptions()));
      this.committed = cut;
    }
    this.tailNode.replaceChildren(renderMarkdown(this.text.slice(this.committed), this.#renderOptions()));
    // The cursor sits at the end of the last block of the tail.
    const lastBlock = this.tailNode.lastElementChild;
    (lastBlock && !lastBlock.matches("pre, .codeblock, table, .table-wrap, ul, ol") ? lastBlock : this.tailNode).append(this.cursor);
    this.root.dataset.lastChunk = String(this.last);
    const now = performance.now();
    if (now - this.savedAt > SAVE_EVERY_MS) this.saveProgress(now);
    this.root.dispatchEvent(new CustomEvent("vedika:grew", { bubbles: true }));
  }

  /** Remember text + chunk id for a reload (called per frame, throttled, and on pagehide). */
  saveProgress(now = performance.now()) {
    if (this.status !== "streaming" || this.placeholder) return;
    this.savedAt = now;
    progress.save(this.id, this.text, this.last, this.citations, this.steps.records());
  }

  #renderStatus() {
    this.root.dataset.status = this.status;
    const label = STATUS_LABEL[this.status];
    if (!label) {
      this.statusNode.hidden = true;
      this.statusNode.replaceChildren();
      return;
    }
    this.statusNode.hidden = false;
    this.statusNode.className = `msg-status status-${this.status}`;
    const parts = [el("span", { class: "status-pill", text: label })];
    if (this.status === "error") {
      parts.push(el("span", { class: "status-text", text: this.error || "The answer could not be generated." }));
      this.statusNode.setAttribute("role", "alert");
    } else if (this.status === "interrupted") {
      parts.push(el("span", { class: "status-text", text: "The server stopped before this answer was finished." }));
    }
    this.statusNode.replaceChildren(...parts);
  }

  #renderActions() {
    const buttons = [];
    const terminal = this.status !== "streaming";
    if (terminal && this.text) {
      buttons.push(el("button", { type: "button", class: "btn-ghost btn-xs", dataset: { action: "copy", testid: "copy-button" }, "aria-label": "Copy answer" }, icon("copy"), el("span", { class: "label", text: "Copy" })));
    }
    if (terminal && this.isLast) {
      if (this.status === "error" || this.status === "interrupted") {
        if (this.status === "interrupted") {
          buttons.push(el("button", { type: "button", class: "btn-ghost btn-xs", dataset: { action: "continue", testid: "continue-button" } }, icon("play"), el("span", { class: "label", text: "Continue" })));
        }
        buttons.push(el("button", { type: "button", class: "btn-accent btn-xs", dataset: { action: "retry", testid: "retry-button" } }, icon("refresh"), el("span", { class: "label", text: "Retry" })));
      } else {
        buttons.push(el("button", { type: "button", class: "btn-ghost btn-xs", dataset: { action: "regenerate", testid: "regenerate-button" } }, icon("refresh"), el("span", { class: "label", text: "Regenerate" })));
      }
    }
    this.actionsNode.replaceChildren(...buttons);
  }

  rebind(messageId) {
    this.id = messageId;
    this.root.dataset.messageId = messageId;
  }

  setLast(isLast) {
    if (this.isLast === isLast) return;
    this.isLast = isLast;
    this.#renderActions();
  }

  setRouting({ model, model_name: modelName, routing }) {
    if (modelName || model) this.modelNode.textContent = modelName || model;
    if (routing?.reason) {
      // A confidence only means something when Best chose; "you picked X" is certain.
      const confidence = Number.isFinite(routing.confidence) && routing.confidence < 1 ? ` (${Math.round(routing.confidence * 100)}% sure)` : "";
      this.whyNode.textContent = `· ${routing.reason}${confidence}`;
      this.whyNode.title = "Why this model";
    }
  }

  // ------------------------------------------------------------ streaming

  /** Before following: show what we know and say from which chunk to resume. */
  prepareResume() {
    const saved = progress.load(this.id);
    if (saved) {
      this.text = saved.text;
      this.last = saved.last;
      this.placeholder = false;
      // A resumed stream replays chunks, not necessarily the `sources` event.
      if (Array.isArray(saved.citations) && !this.citations.length) {
        this.citations = saved.citations;
        renderSources(this.sourcesNode, this.id, this.citations);
      }
      // ... nor the steps sent before `last`.
      if (Array.isArray(saved.steps)) this.steps.applyAll(saved.steps);
    } else {
      // The stored partial text lags the chunks: show it dimmed, replay from 0.
      this.last = 0;
      this.placeholder = this.text.length > 0;
    }
    this.status = "streaming";
    this.steps.setStreaming(true);
    // Only answers streamed on this page are live regions; aria-busy holds the
    // announcement until the answer is complete instead of reading every chunk.
    this.bodyNode.setAttribute("aria-live", "polite");
    this.bodyNode.setAttribute("aria-busy", "true");
    this.#renderAll();
    this.#renderStatus();
    this.#renderActions();
  }

  /** Handle one event; returns "done" after a terminal event, "resync" on a gap. */
  handle(event) {
    switch (event.type) {
      case "stream_start":
        this.setRouting(event);
        return undefined;
      case "sources":
        this.citations = event.citations || [];
        renderSources(this.sourcesNode, this.id, this.citations);
        return undefined;
      case "content_chunk":
        return this.#chunk(event);
      case "snapshot":
        this.#snapshot(event);
        return undefined;
      case "stream_complete":
        this.#takeHeld();
        this.#complete(event);
        return "done";
      case "stream_error":
        this.#takeHeld();
        this.#fail(event);
        return "done";
      case "credits_exhausted":
        this.#fail({ error: event.message || "You have no Vedika coins left today.", code: "credits_exhausted" });
        return "done";
      default:
        // research_step, tool_call, tool_result; anything else is ignored
        if (this.steps.apply(event)) {
          this.root.dispatchEvent(new CustomEvent("vedika:grew", { bubbles: true }));
          this.saveProgress();
        }
        return undefined;
    }
  }

  #chunk({ chunk_id: id, content }) {
    if (!Number.isInteger(id)) return undefined;
    if (id <= this.last) return undefined; // already shown (replay overlap)
    if (id !== this.last + 1) {
      // A jump. A replay from the store sends the text after `last` as one chunk
      // numbered as the answer's last, then (steps and) the terminal event: hold it
      // until that comes. Another chunk first means chunks were lost: ask again from
      // `last` (a held chunk of the same number is the same replay, sent again).
      if (this.held && this.held.id !== id) {
        this.held = null;
        return "resync";
      }
      this.held = { id, content };
      return undefined;
    }
    this.held = null;
    this.#append(id, content);
    this.#schedule();
    return undefined;
  }

  /** The held chunk, as the last before the terminal event (see #chunk). */
  #takeHeld() {
    if (!this.held) return;
    const { id, content } = this.held;
    this.held = null;
    this.#append(id, content);
  }

  #append(id, content) {
    if (this.placeholder) {
      this.placeholder = false;
      this.text = "";
      this.committed = 0;
      this.doneNode.replaceChildren();
      this.root.classList.remove("is-placeholder");
    }
    this.text += content || "";
    this.last = id;
  }

  #snapshot({ content, citations, steps }) {
    if (Array.isArray(steps)) this.steps.applyAll(steps);
    if (Array.isArray(citations) && citations.length && !this.citations.length) {
      this.citations = citations;
      renderSources(this.sourcesNode, this.id, citations);
    }
    if (typeof content === "string" && content !== this.text) {
      this.placeholder = false;
      this.text = content;
      this.#renderAll();
      this.root.dispatchEvent(new CustomEvent("vedika:grew", { bubbles: true }));
    }
  }

  #finish(status, fullText) {
    if (this.frame) cancelAnimationFrame(this.frame);
    this.frame = 0;
    if (typeof fullText === "string" && fullText !== this.text) {
      if (!this.placeholder && this.last > 0) {
        console.warn(`vedika: streamed text of ${this.id} differs from full_response; using full_response`);
      }
      this.text = fullText;
    }
    this.placeholder = false;
    this.status = status;
    this.steps.setStreaming(false);
    this.bodyNode.setAttribute("aria-busy", "false");
    progress.clear(this.id);
    this.#renderAll();
    this.#renderStatus();
    this.#renderActions();
    this.root.dispatchEvent(new CustomEvent("vedika:grew", { bubbles: true }));
  }

  #complete(event) {
    if (Array.isArray(event.citations) && event.citations.length) {
      this.citations = event.citations;
      renderSources(this.sourcesNode, this.id, this.citations);
    }
    this.#finish(event.finish_reason === "stopped" ? "stopped" : "complete", event.full_response);
  }

  #fail(event) {
    this.error = event.error || "The answer could not be generated.";
    this.#finish(event.code === "interrupted" ? "interrupted" : "error", event.full_response);
  }

  /** Fill in a blocking (REST) answer in one go. */
  completeWith(response) {
    this.setRouting(response);
    this.#complete({ full_response: response.response || "", citations: response.citations, finish_reason: "stop" });
  }

  failWith(message) {
    this.#fail({ error: message });
  }
}
