// Starting a turn over REST, shared by both pages: `/ai/chat/start` with the chatbox's
// idempotency key, retried once on a network failure (the key makes that safe), and
// what the chat page needs to know right after navigating (message id and routing).

import { api } from "./api.js";
import { routingMemo } from "./resume-store.js";
import { sleep } from "./util.js";

const PENDING = "vedika.pending.";

export async function startTurn(payload) {
  let started;
  try {
    started = await api.startChat(payload);
  } catch (error) {
    if (error.status) throw error; // the server answered: do not retry blindly
    await sleep(400);
    started = await api.startChat(payload);
  }
  routingMemo.save(started.message_id, { model: started.model, model_name: started.model_name, routing: started.routing });
  try {
    sessionStorage.setItem(PENDING + started.conversation_id, JSON.stringify({ message_id: started.message_id, model: started.model, model_name: started.model_name, mode: payload.mode }));
  } catch {
    /* ignore */
  }
  return started;
}

/** The turn just started for `conversationId` from another page, if any (read once). */
export function takePending(conversationId) {
  try {
    const raw = sessionStorage.getItem(PENDING + conversationId);
    sessionStorage.removeItem(PENDING + conversationId);
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}

/** A sentence for a person, from an ApiError or a network failure. */
export function describeError(error) {
  if (!error) return "Something went wrong.";
  if (error.status === 402) return error.message || "You have no Vedika coins left today.";
  if (error.status === 429) return `${error.message || "Too many requests."}${error.retryAfter ? ` Try again in ${error.retryAfter} s.` : ""}`;
  if (!error.status) return "The server cannot be reached. Check your connection and try again.";
  return error.message || `The server answered HTTP ${error.status}.`;
}
