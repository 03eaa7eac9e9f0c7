// The anonymous device session: created once, kept in localStorage, validated on load.
// The server also sets an HttpOnly cookie; we keep the id to send it as a Bearer token
// and in WebSocket messages, which is how every client of API.md identifies itself.

const SESSION_KEY = "vedika.session_id";
const DEVICE_KEY = "vedika.device_id";

let current = null; // {session_id, device_id, ...}
let pending = null;

function deviceInfo() {
  return {
    user_agent: navigator.userAgent,
    platform: navigator.userAgentData?.platform || navigator.platform || "",
    language: navigator.language || "",
    screen: `${screen.width}x${screen.height}`,
  };
}

function remember(session) {
  current = session;
  try {
    localStorage.setItem(SESSION_KEY, session.session_id);
    if (session.device_id) localStorage.setItem(DEVICE_KEY, session.device_id);
  } catch {
    /* private mode: the cookie still carries the session */
  }
  return session;
}

async function create() {
  const body = { device_info: deviceInfo() };
  const knownDevice = localStorage.getItem(DEVICE_KEY);
  if (knownDevice) body.device_id = knownDevice; // keep the same device (and its history)
  let response = await fetch("/auth/device-session", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    credentials: "same-origin",
    body: JSON.stringify(body),
  });
  if (!response.ok && knownDevice && (response.status === 400 || response.status === 422)) {
    delete body.device_id; // the stored id is not acceptable any more: start afresh
    response = await fetch("/auth/device-session", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      credentials: "same-origin",
      body: JSON.stringify(body),
    });
  }
  if (!response.ok) throw new Error(`Could not start a session (HTTP ${response.status}).`);
  return remember(await response.json());
}

async function validateOrCreate() {
  const stored = localStorage.getItem(SESSION_KEY);
  if (stored) {
    // Any call with the session as a Bearer header says whether it is still good; the
    // id never goes in a URL (where logs, history and Referer headers would keep it).
    const response = await fetch("/coins/balance", {
      headers: { Accept: "application/json", Authorization: `Bearer ${stored}` },
      credentials: "same-origin",
    });
    if (await accountDisabled(response)) return dropDisabled();
    if (response.status !== 401 && response.status !== 404) {
      // Valid (or the server is unwell, not the session): keep using what we have.
      return remember({ session_id: stored, device_id: localStorage.getItem(DEVICE_KEY) });
    }
  }
  return create();
}

/** The current session, creating or validating it on first use. */
export function getSession() {
  if (current) return Promise.resolve(current);
  if (!pending) pending = validateOrCreate().finally(() => (pending = null));
  return pending;
}

/** Forget the session the server refused and make a new one. */
export function renewSession() {
  current = null;
  try {
    localStorage.removeItem(SESSION_KEY);
  } catch {
    /* ignore */
  }
  if (!pending) pending = create().finally(() => (pending = null));
  return pending;
}

/** The session if already known, without any network call. */
export function peekSession() {
  return current;
}

/** Whether an answer (a fetch Response, or an XHR's {status, body}) says the account
 * this session is signed in to was disabled by an admin (403 account_disabled). */
export async function accountDisabled(outcome) {
  if (outcome?.status !== 403) return false;
  if (typeof outcome.clone !== "function") return outcome.body?.error === "account_disabled";
  try {
    return (await outcome.clone().json())?.error === "account_disabled";
  } catch {
    return false;
  }
}

function dropDisabled() {
  // The account is disabled: its session is of no use any more. Forget it and the
  // device id, and go on anonymously, as a new visitor would (docs/accounts.md).
  current = null;
  try {
    localStorage.removeItem(SESSION_KEY);
    localStorage.removeItem(DEVICE_KEY);
  } catch {
    /* ignore */
  }
  return create();
}

/** The session was refused with account_disabled: drop it, start anonymously. */
export function dropDisabledSession() {
  if (!pending) pending = dropDisabled().finally(() => (pending = null));
  return pending;
}
