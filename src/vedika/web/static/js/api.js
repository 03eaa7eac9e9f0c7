// The REST client: every call of API.md the pages use, with the session as a Bearer
// token, and authFetch, through which every request to the API goes.

import { accountDisabled, dropDisabledSession, getSession, renewSession } from "./session.js";

export class ApiError extends Error {
  constructor(status, body, retryAfter) {
    super(body?.message || `The server answered HTTP ${status}.`);
    this.status = status;
    this.code = body?.error || "http_error";
    this.details = body?.details;
    this.retryAfter = retryAfter;
  }
}

/** What to tell a person about a failed call. */
export function errorText(error) {
  return error instanceof ApiError ? error.message : "The server could not be reached.";
}

function withQuery(path, query) {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
  }
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

/**
 * Run `send(session)` with the device session; when it answers 401 (the server no
 * longer knows the session) or 403 account_disabled (an admin disabled its account),
 * make a new (anonymous) session and run it once more. `send` resolves
 * to anything with a `status` (a fetch Response, or an XHR's outcome). The one place
 * the pages renew a session on 401: authFetch uses it, the upload (XHR, for its
 * progress) too.
 */
export async function withSession(send) {
  const first = await send(await getSession());
  if (first?.status === 401) return send(await renewSession());
  // A disabled account's session: drop it and go on as a new anonymous device.
  if (await accountDisabled(first)) return send(await dropDisabledSession());
  return first;
}

/** fetch() as the device: `Authorization: Bearer <session_id>` and the same-origin
 * cookies (the session cookie among them), with one retry on 401. Every call the pages
 * make to the API goes through here (REST, SSE, transcription, speech). */
export function authFetch(path, init = {}) {
  return withSession((session) => {
    const headers = new Headers(init.headers);
    headers.set("Authorization", `Bearer ${session.session_id}`);
    return fetch(path, { ...init, headers, credentials: "same-origin" });
  });
}

/** Call the API (JSON in, JSON out); an answer that is not 2xx throws an ApiError. */
export async function request(method, path, { body, query, signal } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await authFetch(withQuery(path, query), {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  });
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { message: text.slice(0, 200) };
  }
  if (!response.ok) throw new ApiError(response.status, data, response.headers.get("Retry-After"));
  return data;
}

export const api = {
  config: () => request("GET", "/api/config"),
  models: () => request("GET", "/routing/models"),
  routingStats: (deviceId) => request("GET", "/routing/stats", { query: { device_id: deviceId } }),
  setPreference: (modelId) => request("POST", "/routing/preferences", { body: { model_id: modelId } }),
  clearPreference: () => request("DELETE", "/routing/preferences"),
  balance: () => request("GET", "/coins/balance"),
  startChat: (payload) => request("POST", "/ai/chat/start", { body: payload }),
  chatBlocking: (payload, signal) => request("POST", "/ai/chat", { body: payload, signal }),
  stop: (messageId) => request("POST", "/ai/chat/stop", { body: { message_id: messageId } }),
  conversations: (query) => request("GET", "/ai/conversations", { query }),
  conversation: (id) => request("GET", `/ai/conversations/${encodeURIComponent(id)}`),
  rename: (id, title) => request("PATCH", `/ai/conversations/${encodeURIComponent(id)}`, { body: { title } }),
  organise: (id, change) => request("PATCH", `/ai/conversations/${encodeURIComponent(id)}`, { body: change }),
  remove: (id) => request("DELETE", `/ai/conversations/${encodeURIComponent(id)}`),
};
