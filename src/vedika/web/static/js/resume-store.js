// Per-tab memory of answers being streamed: {text, last, citations, steps} per message_id, written
// together (so the text always matches the chunk id) and throttled. A reload renders
// the stored text and resumes from `last`; without a record it resumes from 0 and the
// replayed chunks replace whatever partial text the REST call returned.
// Also keeps the routing explanation of `/ai/chat/start` (a resumed stream may not
// replay `stream_start`).

const PREFIX = "vedika.stream.";
const ROUTING = "vedika.routing.";

function read(key) {
  try {
    const raw = sessionStorage.getItem(key);
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}

function write(key, value) {
  try {
    sessionStorage.setItem(key, JSON.stringify(value));
  } catch {
    /* quota or private mode: resume falls back to replay from 0 */
  }
}

export const progress = {
  load(messageId) {
    const record = read(PREFIX + messageId);
    return record && typeof record.text === "string" && Number.isInteger(record.last) ? record : null;
  },
  save(messageId, text, last, citations, steps) {
    write(PREFIX + messageId, {
      text,
      last,
      citations: citations?.length ? citations : undefined,
      steps: steps?.length ? steps : undefined,
    });
  },
  clear(messageId) {
    try {
      sessionStorage.removeItem(PREFIX + messageId);
    } catch {
      /* ignore */
    }
  },
};

export const routingMemo = {
  load: (messageId) => read(ROUTING + messageId),
  save: (messageId, value) => value && write(ROUTING + messageId, value),
};
