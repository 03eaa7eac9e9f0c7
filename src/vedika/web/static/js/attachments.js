// The Attach source: a file picker, a chip per chosen file with upload progress and a
// remove button. Files go to `POST /files` (multipart); the ids of finished uploads
// are sent with the next message as `attachments`.

import { withSession } from "./api.js";
import { el, icon } from "./util.js";

const ACCEPT = ".pdf,.docx,.txt,.md,.markdown,.html,.htm,.csv";

/** One POST of the file (XHR, for its upload progress); resolves to {status, body}. */
function post(file, session, onProgress) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    form.append("files", file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/files");
    xhr.setRequestHeader("Authorization", `Bearer ${session.session_id}`);
    xhr.upload.addEventListener("progress", (e) => e.lengthComputable && onProgress(e.loaded / e.total));
    xhr.addEventListener("load", () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = null;
      }
      resolve({ status: xhr.status, body });
    });
    xhr.addEventListener("error", () => reject(new Error("Upload failed: the server cannot be reached.")));
    xhr.send(form);
  });
}

async function upload(file, onProgress) {
  const { status, body } = await withSession((session) => post(file, session, onProgress));
  if (status >= 200 && status < 300 && body?.files?.[0]) return body.files[0];
  if (status === 404 || status === 405) throw new Error("File uploads are not available on this server yet.");
  throw new Error(body?.message || `Upload failed (HTTP ${status}).`);
}

export class Attachments {
  constructor({ button, input, chips, onChange }) {
    this.button = button;
    this.input = input;
    this.chips = chips;
    this.onChange = onChange || (() => {});
    this.items = new Map(); // key -> {file, fileId, status, node}
    this.counter = 0;
    input.accept = ACCEPT;
    button.addEventListener("click", () => input.click());
    input.addEventListener("change", () => {
      for (const file of input.files) this.#add(file);
      input.value = "";
    });
  }

  /** The server's limits (`features.uploads` of /api/config): the types and size it takes. */
  setLimits({ accept, max_file_bytes: maxBytes } = {}) {
    if (Array.isArray(accept) && accept.length) this.input.accept = accept.join(",");
    if (Number.isFinite(maxBytes)) this.maxBytes = maxBytes;
  }

  /** Say in the tooltip when the server has no uploads (from /api/config features). */
  setAvailable(available) {
    this.button.title = available
      ? "Attach files (PDF, DOCX, TXT, Markdown, HTML, CSV)"
      : "Attach files: uploads are not available on this server yet";
    this.button.classList.toggle("unavailable", !available);
  }

  #add(file) {
    if (this.maxBytes && file.size > this.maxBytes) {
      this.#refused(file, `${file.name} is larger than this server takes (${Math.round(this.maxBytes / 1e6)} MB).`);
      return;
    }
    const key = `f${++this.counter}`;
    const bar = el("span", { class: "chip-progress" });
    const state = el("span", { class: "chip-state", text: "0%" });
    const remove = el("button", { type: "button", class: "chip-remove", "aria-label": `Remove ${file.name}` }, icon("close"));
    const node = el("span", { class: "file-chip", dataset: { testid: "attachment-chip" }, title: file.name }, el("span", { class: "chip-name", text: file.name }), state, bar, remove);
    const item = { file, fileId: null, status: "uploading", node };
    this.items.set(key, item);
    remove.addEventListener("click", () => {
      this.items.delete(key);
      node.remove();
      this.#refresh();
    });
    this.chips.append(node);
    this.#refresh();
    upload(file, (fraction) => {
      bar.style.width = `${Math.round(fraction * 100)}%`;
      state.textContent = `${Math.round(fraction * 100)}%`;
    }).then(
      (stored) => {
        item.fileId = stored.file_id;
        item.status = "ready";
        state.textContent = "ready";
        node.classList.add("ready");
        this.#refresh();
      },
      (error) => {
        item.status = "failed";
        state.textContent = "failed";
        node.classList.add("failed");
        node.title = error.message;
        if (/not available/.test(error.message)) this.setAvailable(false);
        this.#refresh();
      },
    );
  }

  /** A chip for a file refused before upload (it can only be removed). */
  #refused(file, message) {
    const key = `f${++this.counter}`;
    const remove = el("button", { type: "button", class: "chip-remove", "aria-label": `Remove ${file.name}` }, icon("close"));
    const node = el("span", { class: "file-chip failed", dataset: { testid: "attachment-chip" }, title: message }, el("span", { class: "chip-name", text: file.name }), el("span", { class: "chip-state", text: "too large" }), remove);
    this.items.set(key, { file, fileId: null, status: "failed", node });
    remove.addEventListener("click", () => {
      this.items.delete(key);
      node.remove();
      this.#refresh();
    });
    this.chips.append(node);
    this.#refresh();
  }

  #refresh() {
    this.chips.hidden = this.items.size === 0;
    this.onChange();
  }

  get uploading() {
    return [...this.items.values()].some((i) => i.status === "uploading");
  }

  ids() {
    return [...this.items.values()].filter((i) => i.fileId).map((i) => i.fileId);
  }

  clear() {
    this.items.clear();
    this.chips.replaceChildren();
    this.chips.hidden = true;
  }
}
