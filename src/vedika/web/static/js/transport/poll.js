// Last resort for an answer already in flight: read the conversation over REST until
// the answer is no longer streaming. Emits `snapshot` events (the whole text so far)
// and a terminal event built from the stored message.

import { api } from "../api.js";
import { sleep } from "../util.js";

const EVERY_MS = 1000;

export async function followByPolling({ conversationId, messageId }, onEvent, signal) {
  let failures = 0;
  while (!signal?.aborted) {
    let message = null;
    try {
      const conversation = await api.conversation(conversationId);
      message = (conversation.messages || []).find((m) => m.message_id === messageId) || null;
      failures = 0;
      if (!message) {
        onEvent(terminalError("This answer is no longer available.", "not_found"), "rest");
        return "done";
      }
    } catch (error) {
      failures += 1;
      if (error.status === 404 || failures > 10) {
        onEvent(terminalError(error.message || "The server cannot be reached.", "unavailable"), "rest");
        return "done";
      }
    }
    if (message) {
      onEvent({ type: "snapshot", content: message.content || "", citations: message.citations, steps: message.steps, model: message.model }, "rest");
      if (message.status !== "streaming") {
        onEvent(terminalFrom(message), "rest");
        return "done";
      }
    }
    await sleep(EVERY_MS);
  }
  return "done";
}

function terminalError(error, code) {
  return { type: "stream_error", error, code, retryable: true };
}

/** The terminal event a streaming transport would have sent for a stored message. */
export function terminalFrom(message) {
  if (message.status === "error") {
    return { type: "stream_error", error: message.error || "The answer failed.", code: "error", retryable: true, full_response: message.content };
  }
  if (message.status === "interrupted") {
    return { type: "stream_error", error: "The answer was interrupted.", code: "interrupted", retryable: true, full_response: message.content };
  }
  return {
    type: "stream_complete",
    full_response: message.content || "",
    citations: message.citations || [],
    finish_reason: message.status === "stopped" ? "stopped" : "stop",
  };
}
