// Dictation: the browser's speech recognition where it exists; otherwise, when the
// server says transcription is configured (`features.transcription`), a recording sent
// to `POST /ai/transcribe`. The button stays hidden where neither can work
// (`data-engine` says which one it uses: "browser" or "server").

import { Recorder, recordingAvailable, transcribe } from "./recorder.js";

export function speechRecognitionAvailable() {
  return typeof (window.SpeechRecognition || window.webkitSpeechRecognition) === "function";
}

export class Dictation {
  constructor(button, textarea, { onInput, onError } = {}) {
    this.button = button;
    this.textarea = textarea;
    this.onInput = onInput || (() => {});
    this.onError = onError || (() => {});
    this.used = false;
    this.recognition = null;
    this.recorder = null;
    this.finish = null; // resolves the pending capture with its text
    this.#setEngine(speechRecognitionAvailable() ? "browser" : null);
    button.addEventListener("click", () => (this.active ? this.stop() : this.capture()));
  }

  /** Where the browser has no recognition, use the server's transcription if it has one. */
  configure(features) {
    if (this.engine === "browser") return;
    this.#setEngine(features?.transcription && recordingAvailable() ? "server" : null);
  }

  #setEngine(engine) {
    this.engine = engine;
    this.button.hidden = !engine;
    this.button.dataset.engine = engine || "";
    if (engine === "server") this.button.title = "Dictate (recorded, then transcribed by the server)";
  }

  get available() {
    return Boolean(this.engine);
  }

  get active() {
    return Boolean(this.recognition || this.recorder || this.finish);
  }

  /**
   * Listen and put what is said into the box. Resolves with the words heard (""
   * when nothing was). `once`: one utterance, ending by itself at a pause (voice mode);
   * otherwise it goes on until the button is pressed again.
   */
  capture({ once = false } = {}) {
    if (this.active || !this.engine) return Promise.resolve("");
    const done = new Promise((resolve) => {
      this.finish = resolve;
    });
    this.button.setAttribute("aria-pressed", "true");
    this.button.classList.add("listening");
    if (this.engine === "browser") this.#recognise(once);
    else this.#record(once);
    return done;
  }

  #recognise(once) {
    const Recognition = window.SpeechRecognition || window.webkitSpeechRecognition;
    const recognition = new Recognition();
    recognition.lang = navigator.language || "en-US";
    recognition.interimResults = true;
    recognition.continuous = !once;
    const base = this.textarea.value ? `${this.textarea.value.replace(/\s*$/, "")} ` : "";
    let heard = "";
    recognition.addEventListener("result", (event) => {
      let text = "";
      for (const result of event.results) text += result[0].transcript;
      heard = text;
      this.textarea.value = base + text;
      this.used = true;
      this.onInput();
    });
    recognition.addEventListener("end", () => this.#ended(heard));
    recognition.addEventListener("error", (event) => {
      if (event.error && !["no-speech", "aborted"].includes(event.error)) {
        this.onError(`Dictation stopped (${event.error}).`);
      }
    });
    try {
      recognition.start();
    } catch {
      this.#ended("");
      return;
    }
    this.recognition = recognition;
  }

  async #record(once) {
    const recorder = new Recorder({ silenceMs: once ? 1500 : 0, maxMs: once ? 15000 : 120000, onAutoStop: () => this.stop() });
    this.recorder = recorder;
    this.button.dataset.state = "recording";
    try {
      await recorder.start();
    } catch {
      this.recorder = null;
      this.onError("The microphone is not available (permission refused, or no microphone).");
      this.#ended("");
    }
  }

  stop() {
    if (this.recognition) {
      this.recognition.stop();
      return;
    }
    const recorder = this.recorder;
    if (!recorder) return;
    this.recorder = null;
    this.button.dataset.state = "transcribing";
    this.button.disabled = true;
    recorder
      .stop()
      .then((blob) => (blob.size ? transcribe(blob, (navigator.language || "").slice(0, 2)) : ""))
      .then(
        (text) => {
          const heard = (text || "").trim();
          if (heard) {
            const base = this.textarea.value ? `${this.textarea.value.replace(/\s*$/, "")} ` : "";
            this.textarea.value = base + heard;
            this.used = true;
            this.onInput();
          }
          this.#ended(heard);
        },
        (error) => {
          this.onError(error.message);
          this.#ended("");
        },
      );
  }

  /** Stop without using what was heard (voice mode switched off). */
  cancel() {
    if (this.recognition) this.recognition.abort?.();
    this.recorder?.cancel();
    this.recorder = null;
    this.#ended("");
  }

  #ended(heard) {
    this.recognition = null;
    this.button.disabled = false;
    delete this.button.dataset.state;
    this.button.setAttribute("aria-pressed", "false");
    this.button.classList.remove("listening");
    const finish = this.finish;
    this.finish = null;
    finish?.(heard || "");
  }

  /** The interaction mode of the message about to be sent, then reset. */
  takeMode() {
    const mode = this.used ? "dictation" : "type";
    this.used = false;
    return mode;
  }
}
