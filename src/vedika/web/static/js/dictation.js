// Dictation through the browser's speech recognition. The button stays hidden
// where the browser has none.

export function speechRecognitionAvailable() {
  return typeof (window.SpeechRecognition || window.webkitSpeechRecognition) === "function";
}

export class Dictation {
  constructor(button, textarea, { onInput } = {}) {
    this.button = button;
    this.textarea = textarea;
    this.onInput = onInput || (() => {});
    this.used = false;
    this.recognition = null;
    if (!speechRecognitionAvailable()) {
      button.hidden = true;
      return;
    }
    button.hidden = false;
    button.addEventListener("click", () => (this.recognition ? this.stop() : this.start()));
  }

  start() {
    const Recognition = window.SpeechRecognition || window.webkitSpeechRecognition;
    const recognition = new Recognition();
    recognition.lang = navigator.language || "en-US";
    recognition.interimResults = true;
    recognition.continuous = true;
    const base = this.textarea.value ? `${this.textarea.value.replace(/\s*$/, "")} ` : "";
    recognition.addEventListener("result", (event) => {
      let text = "";
      for (const result of event.results) text += result[0].transcript;
      this.textarea.value = base + text;
      this.used = true;
      this.onInput();
    });
    recognition.addEventListener("end", () => this.#ended());
    recognition.addEventListener("error", () => this.#ended());
    try {
      recognition.start();
    } catch {
      return;
    }
    this.recognition = recognition;
    this.button.setAttribute("aria-pressed", "true");
    this.button.classList.add("listening");
  }

  stop() {
    this.recognition?.stop();
  }

  #ended() {
    this.recognition = null;
    this.button.setAttribute("aria-pressed", "false");
    this.button.classList.remove("listening");
  }

  /** The interaction mode of the message about to be sent, then reset. */
  takeMode() {
    const mode = this.used ? "dictation" : "type";
    this.used = false;
    return mode;
  }
}
