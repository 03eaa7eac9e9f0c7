// What this environment tells the browser (`GET /api/config`), fetched once per page.

import { api } from "./api.js";

let pending = null;

export function getConfig() {
  if (!pending) pending = api.config().catch(() => ({}));
  return pending;
}

/** The WebSocket URL: the configured one when it points at this host, else derived. */
export async function websocketUrl() {
  const config = await getConfig();
  const derived = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws`;
  const configured = config?.websocket_url;
  if (typeof configured !== "string" || !configured) return derived;
  try {
    const url = new URL(configured, derived);
    // connect-src 'self' ws: wss: would allow other hosts, but the page's session
    // belongs to this origin: only follow the setting when it is this host.
    if ((url.protocol === "ws:" || url.protocol === "wss:") && url.host === location.host) {
      return url.href;
    }
  } catch {
    /* fall through */
  }
  return derived;
}
