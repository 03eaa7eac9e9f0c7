// The REST client: every call of API.md the pages use, with the session as a Bearer token.

import { getSession, renewSession } from "./session.js";

export class ApiError extends Error {
  constructor(status, body, retryAfter) {
    super(body?.message || `The server answered HTTP ${status}.`);
    this.status = status;
    this.code = body?.error || "http_error";
    this.details = body?.details;
    this.retryAfter = retryAfter;
  }
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

/** Call the API. Retries once with a fresh session when the server says 401. */
export async function request(method, path, { body, query, signal } = {}) {
  for (let attempt = 0; attempt < 2; attempt += 1) {
    const session = attempt === 0 ? await getSession() : await renewSession();
    const headers = { Accept: "application/json", Authorization: `Bearer ${session.session_id}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(withQuery(path, query), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      signal,
    });
    if (response.status === 401 && attempt === 0) continue;
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
  throw new ApiError(401, { message: "Your session could not be renewed." });
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
  remove: (id) => request("DELETE", `/ai/conversations/${encodeURIComponent(id)}`),
};
