// Server-Sent Events fallback: `GET /ai/chat/stream/{message_id}?after=N`, read with
// fetch() and a stream reader. Nothing here knows the event types: every `data:` is one
// JSON object carrying its own `type` (API.md); `event:` names the same type and is
// used only for JSON without one. The request goes through authFetch like every other
// call (Bearer header and the session cookie, one renewal on 401), so the session id
// never goes in the URL.
//
// One connection per call. The server's `retry:` and the `id:` lines are for
// EventSource's own reconnects; here the follower reconnects, with `?after=` the last
// chunk the page shows (not the last id on the wire: after a gap the page re-attaches
// from what it has).

import { authFetch } from "../api.js";

/** The events of an SSE body, as `{event, data}` (the HTML spec's parsing rules). */
async function* readEvents(body) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let event = "";
  let data = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      // A CR at the very end may be the first half of a CRLF: keep it for the next read.
      const lines = buffer.split(/\r\n|\r(?!$)|\n/);
      buffer = lines.pop();
      for (const line of lines) {
        if (!line) {
          if (data.length) yield { event: event || "message", data: data.join("\n") };
          event = "";
          data = [];
          continue;
        }
        const colon = line.indexOf(":");
        if (colon === 0) continue; // a comment (keep-alive)
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? "" : line.slice(colon + (line[colon + 1] === " " ? 2 : 1));
        if (field === "data") data.push(text);
        else if (field === "event") event = text;
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

/**
 * Follow one answer until `onEvent` returns "done" or the stream breaks.
 * Resolves to "done", "lost" (it worked, then broke) or "failed" (never opened).
 */
export async function followSse({ messageId, after }, onEvent, signal) {
  const url = `/ai/chat/stream/${encodeURIComponent(messageId)}?after=${encodeURIComponent(after)}`;
  let response;
  try {
    response = await authFetch(url, { headers: { Accept: "text/event-stream" }, cache: "no-store", signal });
  } catch {
    return signal?.aborted ? "done" : "failed";
  }
  if (!response.ok || !response.body || !/^text\/event-stream/i.test(response.headers.get("Content-Type") || "")) {
    response.body?.cancel().catch(() => {});
    return "failed";
  }
  try {
    for await (const { event, data: text } of readEvents(response.body)) {
      let data;
      try {
        data = JSON.parse(text);
      } catch {
        continue;
      }
      if (!data || typeof data !== "object") continue;
      if (!data.type && event !== "message") data.type = event;
      const verdict = onEvent(data, "sse");
      if (verdict === "done") return "done";
      if (verdict === "resync") return "lost";
    }
  } catch {
    /* the connection broke (or was aborted) */
  }
  return signal?.aborted ? "done" : "lost";
}
