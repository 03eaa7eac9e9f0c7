// Voice mode: a spoken conversation. The page listens for a question (the dictation
// engine, one utterance), sends it with `interaction_mode: "voice"`, reads the answer
// aloud (`POST /ai/speech` when the server has speech, else the browser's speech
// synthesis), then listens for the next question. It stays on across pages of the tab
// (sessionStorage) until the button is pressed again. The button is shown only where
// both listening and speaking can work.

import { authFetch } from "./api.js";

const KEY = "vedika.voice";
const GIVE_UP_AFTER = 2; // listens in a row that heard nothing
const SPEECH_PART_CHARS = 4000;

/** Markdown -> what is worth reading aloud (no code, no markers, no markup). */
export function speakable(markdown) {
  return String(markdown || "")
    .replace(/```[\s\S]*?```/g, " (code omitted) ")
    .replace(/`([^`]*)`/g, "$1")
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/\[\d{1,3}\]/g, "")
    .replace(/^\s{0,3}(#{1,6}|[-*+>]|\d+\.)\s+/gm, "")
    .replace(/^\|?[\s:|-]+\|[\s:|-]*$/gm, "")
    .replace(/[*_~|#>]/g, " ")
    .replace(/\s+/g, " ")
    .trim();
}

function parts(text, size) {
  const out = [];
  let rest = text;
  while (rest.length > size) {
    let cut = rest.lastIndexOf(". ", size);
    if (cut < size / 2) cut = rest.lastIndexOf(" ", size);
    if (cut < 1) cut = size;
    out.push(rest.slice(0, cut + 1).trim());
    rest = rest.slice(cut + 1);
  }
  if (rest.trim()) out.push(rest.trim());
  return out;
}

export class VoiceMode {
  constructor(button, { dictation, onUtterance, onError }) {
    this.button = button;
    this.dictation = dictation;
    this.onUtterance = onUtterance;
    this.onError = onError || (() => {});
    this.features = {};
    this.on = false;
    this.audio = null;
    this.misses = 0;
    this.token = 0; // bumped when switched off, so pending steps know to stop
    button.hidden = true;
    button.addEventListener("click", () => (this.on ? this.stop() : this.start()));
  }

  canSpeak() {
    return Boolean(this.features.speech) || "speechSynthesis" in window;
  }

  /** Show the button once the server's features are known. */
  configure(features) {
    this.features = features || {};
    const usable = this.dictation.available && this.canSpeak();
    this.button.hidden = !usable;
    if (!usable && this.on) this.stop();
  }

  /** Whether voice mode was left on by the previous page of this tab. */
  get remembered() {
    try {
      return sessionStorage.getItem(KEY) === "on";
    } catch {
      return false;
    }
  }

  #setState(state) {
    this.button.dataset.state = state;
    this.button.setAttribute("aria-pressed", String(this.on));
    this.button.title = {
      off: "Voice mode: talk, and hear the answers",
      listening: "Voice mode: listening… (press to stop)",
      waiting: "Voice mode: waiting for the answer (press to stop)",
      speaking: "Voice mode: reading the answer aloud (press to stop)",
    }[state];
  }

  start({ listen = true } = {}) {
    if (this.button.hidden) return;
    this.on = true;
    this.misses = 0;
    try {
      sessionStorage.setItem(KEY, "on");
    } catch {
      /* ignore */
    }
    this.#setState("waiting");
    if (listen) this.listen();
  }

  stop() {
    this.on = false;
    this.token += 1;
    try {
      sessionStorage.removeItem(KEY);
    } catch {
      /* ignore */
    }
    this.dictation.cancel();
    this.#silence();
    this.#setState("off");
  }

  /** Listen for one question and hand it to the page. */
  async listen() {
    if (!this.on) return;
    const token = this.token;
    this.#setState("listening");
    const heard = (await this.dictation.capture({ once: true })).trim();
    if (token !== this.token || !this.on) return;
    if (!heard) {
      this.misses += 1;
      if (this.misses >= GIVE_UP_AFTER) {
        this.onError("Voice mode paused: nothing was heard. Press the voice button to talk again.");
        this.stop();
        return;
      }
      this.listen();
      return;
    }
    this.misses = 0;
    this.#setState("waiting");
    this.onUtterance(heard);
  }

  /** Read an answer aloud, then listen for the next question. */
  async answer(markdown) {
    if (!this.on) return;
    const token = this.token;
    const text = speakable(markdown);
    if (text) {
      this.#setState("speaking");
      await this.speak(text);
    }
    if (token === this.token && this.on) this.listen();
  }

  async speak(text) {
    if (this.features.speech) {
      try {
        for (const part of parts(text, Math.min(this.features.limits?.speech_max_chars || SPEECH_PART_CHARS, SPEECH_PART_CHARS))) {
          if (!this.on) return;
          await this.#play(await this.#fetchSpeech(part));
        }
        return;
      } catch (error) {
        if (!("speechSynthesis" in window)) {
          this.onError(error.message || "The answer could not be read aloud.");
          return;
        }
      }
    }
    await this.#synthesise(text);
  }

  async #fetchSpeech(text) {
    const response = await authFetch("/ai/speech", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ text }),
    });
    if (!response.ok) {
      let message = `Reading aloud failed (HTTP ${response.status}).`;
      try {
        message = (await response.json()).message || message;
      } catch {
        /* keep the generic sentence */
      }
      throw new Error(message);
    }
    return response.blob();
  }

  #play(blob) {
    return new Promise((resolve) => {
      const url = URL.createObjectURL(blob);
      const audio = new Audio(url);
      this.audio = audio;
      const done = () => {
        URL.revokeObjectURL(url);
        if (this.audio === audio) this.audio = null;
        resolve();
      };
      audio.addEventListener("ended", done, { once: true });
      audio.addEventListener("error", done, { once: true });
      audio.addEventListener("pause", done, { once: true });
      audio.play().catch(done);
    });
  }

  #synthesise(text) {
    return new Promise((resolve) => {
      const utterance = new SpeechSynthesisUtterance(text);
      utterance.lang = navigator.language || "en-US";
      // Some browsers never say they finished (no voices installed): do not wait forever.
      const guard = setTimeout(resolve, Math.min(180000, 3000 + text.length * 90));
      const done = () => {
        clearTimeout(guard);
        resolve();
      };
      utterance.addEventListener("end", done);
      utterance.addEventListener("error", done);
      speechSynthesis.speak(utterance);
    });
  }

  #silence() {
    if (this.audio) this.audio.pause();
    if ("speechSynthesis" in window) speechSynthesis.cancel();
  }
}
