// The chatbox (same on both pages): auto-growing textarea, mode tabs, source toggles,
// attachments, model dropdown, dictation, voice mode, send and stop. It only gathers
// what the user wants; the page decides how to send it.

import { api } from "./api.js";
import { getConfig } from "./config.js";
import { getSession } from "./session.js";
import { Attachments } from "./attachments.js";
import { Dictation } from "./dictation.js";
import { ModelDropdown } from "./dropdown.js";
import { VoiceMode } from "./voice.js";
import { hydrateIcons, uuid } from "./util.js";

const MAX_TEXTAREA_PX = 200;
const MODE_KEY = "vedika.mode";
const WEB_KEY = "vedika.source.web";
const NO_WEB_SEARCH =
  "Web search is not set up on this server, so answers use the model and your files only. " +
  "The operator can add a provider: VEDIKA_SEARXNG_URL (a SearXNG of their own), " +
  "VEDIKA_BRAVE_API_KEY, VEDIKA_TAVILY_API_KEY, or VEDIKA_SEARCH_PROVIDER=duckduckgo " +
  "with pip install 'vedika[ddgs]' (no key needed). See docs/sources.md.";
const MODEL_KEY = "vedika.model";
const PLACEHOLDER = {
  search: null, // the template's own
  research: "Research a topic: Vedika plans searches, reads the pages and writes a report…",
  agents: "Give the agent a task: it can search, read pages and files, and compute…",
};

function stored(key, fallback) {
  try {
    return localStorage.getItem(key) ?? fallback;
  } catch {
    return fallback;
  }
}

function store(key, value) {
  try {
    localStorage.setItem(key, value);
  } catch {
    /* ignore */
  }
}

export class Chatbox {
  constructor(form, { onSubmit, onStop, onNotice } = {}) {
    this.form = form;
    this.onSubmit = onSubmit || (() => {});
    this.onStop = onStop || (() => {});
    this.onNotice = onNotice || (() => {});
    this.nextInteraction = null; // "voice" for a question spoken in voice mode
    this.textarea = form.querySelector("[data-testid=chat-input]");
    this.placeholder = this.textarea.placeholder;
    this.sendButton = form.querySelector("[data-testid=send-button]");
    this.stopButton = form.querySelector("[data-testid=stop-button]");
    this.tabs = [...form.querySelectorAll("[role=tab][data-mode]")];
    this.webToggle = form.querySelector("[data-testid=source-web]");
    this.busy = false; // a request is being sent
    this.webUnavailable = false; // no web search provider on this server
    this.streaming = false; // an answer is streaming (send becomes stop)
    hydrateIcons(form);

    this.attachments = new Attachments({
      button: form.querySelector("[data-testid=source-attach]"),
      input: form.querySelector("input[type=file]"),
      chips: form.querySelector("[data-attach-chips]"),
      onChange: () => this.#refresh(),
    });
    this.dictation = new Dictation(form.querySelector("[data-testid=dictation-button]"), this.textarea, {
      onInput: () => this.#grow(),
      onError: (message) => this.onNotice(message),
    });
    this.voice = new VoiceMode(form.querySelector("[data-testid=voice-button]"), {
      dictation: this.dictation,
      onUtterance: (text) => this.submitSpoken(text),
      onError: (message) => this.onNotice(message),
    });
    this.dropdown = new ModelDropdown(form.querySelector("[data-model-picker]"), {
      onChange: (id) => this.#saveModel(id),
    });

    this.#bind();
    this.setMode(stored(MODE_KEY, "search"));
    this.#setWeb(stored(WEB_KEY, "on") === "on");
    this.dropdown.select(stored(MODEL_KEY, "best"));
    this.#grow();
  }

  #bind() {
    this.textarea.addEventListener("input", () => this.#grow());
    this.textarea.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.submit();
      }
    });
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    this.stopButton.addEventListener("click", () => this.onStop());
    for (const tab of this.tabs) {
      tab.addEventListener("click", () => this.setMode(tab.dataset.mode));
      tab.addEventListener("keydown", (event) => {
        const delta = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
        if (!delta) return;
        event.preventDefault();
        const next = this.tabs[(this.tabs.indexOf(tab) + delta + this.tabs.length) % this.tabs.length];
        this.setMode(next.dataset.mode);
        next.focus();
      });
    }
    this.webToggle.addEventListener("click", () => {
      if (this.webUnavailable) this.onNotice(NO_WEB_SEARCH);
      else this.#setWeb(this.webToggle.getAttribute("aria-pressed") !== "true");
    });
  }

  /** Load the models and the device's saved choice (local first, then the server's). */
  async loadModels() {
    this.featuresReady = getConfig().then((config) => this.#applyFeatures(config?.features || {}));
    try {
      const { models } = await api.models();
      this.dropdown.setModels(models || []);
    } catch {
      return; // "Best" alone still works
    }
    this.dropdown.select(stored(MODEL_KEY, "best"));
    try {
      const session = await getSession();
      const stats = await api.routingStats(session.device_id);
      const preferred = stats?.preference_type === "user_override" ? stats.preferred_model : "best";
      if (preferred) store(MODEL_KEY, this.dropdown.select(preferred));
    } catch {
      /* keep the local choice */
    }
  }

  /** Say (in tooltips, discreetly) what this server cannot do yet. */
  #applyFeatures(features) {
    this.features = features;
    const uploads = features.file_upload ?? features.files ?? features.uploads;
    this.attachments.setAvailable(uploads !== false);
    if (features.uploads && typeof features.uploads === "object") this.attachments.setLimits(features.uploads);
    this.dictation.configure(features);
    this.voice.configure(features);
    if (features.web_search === false) {
      // Not a chip that looks on and then "finds 0 sources": it says it is not set up.
      this.webUnavailable = true;
      this.webToggle.setAttribute("aria-pressed", "false");
      this.webToggle.setAttribute("aria-disabled", "true");
      this.webToggle.classList.add("unavailable");
      this.webToggle.querySelector(".toggle-label").textContent = "Web: not set up";
      this.webToggle.title = NO_WEB_SEARCH;
    } else if (features.web_search_provider) {
      this.webToggle.title = `Search the web (${features.web_search_provider})`;
    }
    if (Array.isArray(features.modes)) {
      for (const tab of this.tabs) {
        if (!features.modes.includes(tab.dataset.mode)) {
          tab.title = `${tab.textContent} mode is not available on this server yet; it answers like Search`;
        }
      }
    }
  }

  async #saveModel(id) {
    store(MODEL_KEY, id);
    try {
      if (id === "best") await api.clearPreference();
      else await api.setPreference(id);
    } catch {
      /* remembered locally; the server will learn it next time */
    }
  }

  setMode(mode) {
    if (!this.tabs.some((t) => t.dataset.mode === mode)) mode = "search";
    for (const tab of this.tabs) {
      const on = tab.dataset.mode === mode;
      tab.setAttribute("aria-selected", String(on));
      tab.tabIndex = on ? 0 : -1;
    }
    this.mode = mode;
    this.textarea.placeholder = PLACEHOLDER[mode] || this.placeholder;
    this.form.dataset.mode = mode;
    store(MODE_KEY, mode);
  }

  #setWeb(on) {
    this.webToggle.setAttribute("aria-pressed", String(on));
    store(WEB_KEY, on ? "on" : "off");
  }

  #grow() {
    const area = this.textarea;
    area.style.height = "auto";
    const height = Math.min(area.scrollHeight, MAX_TEXTAREA_PX);
    area.style.height = `${height}px`;
    area.style.overflowY = area.scrollHeight > MAX_TEXTAREA_PX ? "auto" : "hidden";
    this.#refresh();
  }

  #refresh() {
    const empty = this.textarea.value.trim() === "";
    this.sendButton.disabled = empty || this.busy || this.streaming || this.attachments.uploading;
    this.sendButton.hidden = this.streaming;
    this.stopButton.hidden = !this.streaming;
  }

  setBusy(busy) {
    this.busy = busy;
    this.#refresh();
  }

  setStreaming(streaming) {
    const hadFocus = document.activeElement === this.stopButton;
    this.streaming = streaming;
    this.#refresh();
    if (hadFocus && !streaming) this.textarea.focus();
  }

  focus() {
    this.textarea.focus();
  }

  /** What the API needs for this message (a fresh idempotency key each time). */
  payload(message) {
    const sources = [];
    if (!this.webUnavailable && this.webToggle.getAttribute("aria-pressed") === "true") sources.push("web");
    const attachments = this.attachments.ids();
    if (attachments.length) sources.push("files");
    return {
      message,
      model_id: this.dropdown.value || "best",
      mode: this.mode,
      sources,
      attachments: attachments.length ? attachments : undefined,
      interaction_mode: this.#interaction(),
      client_message_id: uuid(),
    };
  }

  #interaction() {
    const typed = this.dictation.takeMode();
    const mode = this.nextInteraction || typed;
    this.nextInteraction = null;
    return mode;
  }

  /** A question heard in voice mode: sent as it is, marked `interaction_mode: "voice"`. */
  submitSpoken(text) {
    this.textarea.value = text;
    this.#grow();
    this.nextInteraction = "voice";
    this.submit();
  }

  submit() {
    const message = this.textarea.value.trim();
    if (!message || this.busy || this.streaming || this.attachments.uploading) return;
    if (this.dictation.active) this.dictation.cancel();
    this.onSubmit(this.payload(message), {
      clear: () => {
        this.textarea.value = "";
        this.attachments.clear();
        this.#grow();
      },
    });
  }
}
