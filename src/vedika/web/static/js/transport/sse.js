// Server-Sent Events fallback: `GET /ai/chat/stream/{message_id}?after=N`.
// EventSource cannot send an Authorization header; it sends the HttpOnly session
// cookie (same origin), so the session id stays out of the URL, where access logs,
// proxies and the browser's history would keep it. Without that cookie the stream
// fails to open and the follower falls back to REST. Named events: one listener per
// event type.

import { getSession } from "../session.js";

const EVENT_TYPES = [
  "stream_start",
  "sources",
  "content_chunk",
  "stream_complete",
  "stream_error",
  "credits_info",
  "credits_exhausted",
  "conversation_started",
  "research_step",
  "tool_call",
  "tool_result",
  "message",
];

/**
 * Follow one answer until `onEvent` returns "done" or the stream breaks.
 * Resolves to "done", "lost" (it worked, then broke) or "failed" (never opened).
 */
export async function followSse({ messageId, after }, onEvent, signal) {
  await getSession(); // a session (and its cookie) before the first stream
  const url = `/ai/chat/stream/${encodeURIComponent(messageId)}?after=${encodeURIComponent(after)}`;
  return new Promise((resolve) => {
    const source = new EventSource(url, { withCredentials: true });
    let opened = false;
    let finished = false;
    const finish = (outcome) => {
      if (finished) return;
      finished = true;
      source.close();
      signal?.removeEventListener("abort", onAbort);
      resolve(outcome);
    };
    const onAbort = () => finish("done");
    signal?.addEventListener("abort", onAbort);
    source.addEventListener("open", () => {
      opened = true;
    });
    const handle = (message) => {
      opened = true;
      let data;
      try {
        data = JSON.parse(message.data);
      } catch {
        return;
      }
      if (!data.type && message.type !== "message") data.type = message.type;
      const verdict = onEvent(data, "sse");
      if (verdict === "done") finish("done");
      else if (verdict === "resync") finish("lost");
    };
    for (const type of EVENT_TYPES) source.addEventListener(type, handle);
    source.addEventListener("error", () => finish(opened ? "lost" : "failed"));
  });
}
