// Recording from the microphone (MediaRecorder) and turning it into text with the
// server's `POST /ai/transcribe`: dictation where the browser has no speech recognition
// but the server has a transcription endpoint.

import { authFetch } from "./api.js";

const LEVEL_EVERY_MS = 100;
const SPEECH_LEVEL = 0.02; // RMS above which we count the sound as speech

export function recordingAvailable() {
  return Boolean(navigator.mediaDevices?.getUserMedia) && typeof window.MediaRecorder === "function";
}

/** One recording: `start()`, then `stop()` resolves with the audio (a Blob). With
 * `silenceMs`, it also stops by itself after that much quiet following speech. */
export class Recorder {
  constructor({ silenceMs = 0, maxMs = 60000, onAutoStop } = {}) {
    this.silenceMs = silenceMs;
    this.maxMs = maxMs;
    this.onAutoStop = onAutoStop || (() => {});
    this.chunks = [];
    this.timers = [];
  }

  async start() {
    this.stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    this.media = new MediaRecorder(this.stream);
    this.media.addEventListener("dataavailable", (event) => event.data.size && this.chunks.push(event.data));
    this.done = new Promise((resolve) => this.media.addEventListener("stop", resolve, { once: true }));
    this.media.start(250);
    this.timers.push(setTimeout(() => this.#auto(), this.maxMs));
    if (this.silenceMs) this.#watchSilence();
  }

  #watchSilence() {
    try {
      const context = new AudioContext();
      const analyser = context.createAnalyser();
      analyser.fftSize = 1024;
      context.createMediaStreamSource(this.stream).connect(analyser);
      const samples = new Float32Array(analyser.fftSize);
      let heard = false;
      let quietSince = performance.now();
      this.context = context;
      this.timers.push(
        setInterval(() => {
          analyser.getFloatTimeDomainData(samples);
          const rms = Math.sqrt(samples.reduce((sum, x) => sum + x * x, 0) / samples.length);
          const now = performance.now();
          if (rms > SPEECH_LEVEL) {
            heard = true;
            quietSince = now;
          } else if (heard && now - quietSince > this.silenceMs) {
            this.#auto();
          }
        }, LEVEL_EVERY_MS),
      );
    } catch {
      /* no Web Audio: the recording stops at maxMs or by hand */
    }
  }

  #auto() {
    if (this.media?.state === "recording") this.onAutoStop();
  }

  /** Stop recording; resolves with the audio. */
  async stop() {
    for (const timer of this.timers) {
      clearTimeout(timer);
      clearInterval(timer);
    }
    this.timers = [];
    if (this.media?.state === "recording") this.media.stop();
    await this.done;
    for (const track of this.stream?.getTracks() || []) track.stop();
    this.context?.close().catch(() => {});
    return new Blob(this.chunks, { type: this.media?.mimeType || "audio/webm" });
  }

  cancel() {
    this.stop().catch(() => {});
  }
}

/** `POST /ai/transcribe`; resolves with the text, rejects with an Error a person can read. */
export async function transcribe(blob, language) {
  const form = new FormData();
  form.append("file", blob, "dictation.webm");
  if (language) form.append("language", language);
  let response;
  try {
    response = await authFetch("/ai/transcribe", { method: "POST", body: form });
  } catch {
    throw new Error("The server cannot be reached to transcribe the recording.");
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) throw new Error(body?.message || `Transcription failed (HTTP ${response.status}).`);
  return typeof body?.text === "string" ? body.text : "";
}
