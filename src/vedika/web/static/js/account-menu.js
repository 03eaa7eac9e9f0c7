// The account menu at the foot of the sidebar: "Sign in" and "Sign up" for an anonymous
// device; the account's name and email, "Sign out" and "Sign out everywhere" once
// signed in. Everything through the public API (docs/accounts.md).

import { adoptSession, getSession, renewSession } from "./session.js";
import { el } from "./util.js";

const HEADERS = { Accept: "application/json", "X-Requested-With": "fetch" };

async function call(method, path) {
  const session = await getSession();
  const response = await fetch(path, {
    method,
    headers: { ...HEADERS, Authorization: `Bearer ${session.session_id}` },
    credentials: "same-origin",
  });
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new Error(body?.message || `The server answered HTTP ${response.status}.`);
  return body;
}

/** Where to come back after signing in: this page (not the sign-in pages). */
export function herePath() {
  const path = location.pathname + location.search;
  return path.startsWith("/signin") || path.startsWith("/signup") ? "/" : path;
}

function anonymous(root) {
  const next = encodeURIComponent(herePath());
  root.replaceChildren(
    el("p", { class: "account-note", text: "Sign in to keep your history on every device." }),
    el(
      "div",
      { class: "account-actions" },
      el("a", { class: "btn-ghost", href: `/signin?next=${next}`, "data-testid": "account-signin", text: "Sign in" }),
      el("a", { class: "btn-ghost btn-accent", href: `/signup?next=${next}`, "data-testid": "account-signup", text: "Sign up" }),
    ),
  );
}

/** "Connect <provider>" for each provider not yet connected to the account. */
async function connectButtons(me, status) {
  const response = await fetch("/auth/oidc/providers", { headers: { Accept: "application/json" } });
  const providers = response.ok ? await response.json() : [];
  const connected = new Set((me.identities || []).map((identity) => identity.provider));
  return providers
    .filter((provider) => !connected.has(provider.id))
    .map((provider) =>
      el("button", {
        type: "button",
        class: "btn-ghost",
        "data-testid": `account-connect-${provider.id}`,
        text: `Connect ${provider.name}`,
        on: {
          click: async (event) => {
            event.currentTarget.disabled = true;
            try {
              const path = `/auth/oidc/${encodeURIComponent(provider.id)}/connect`;
              const started = await call("POST", `${path}?next=${encodeURIComponent(herePath())}`);
              location.assign(started.authorization_url);
            } catch (error) {
              status.textContent = error.message;
              status.hidden = false;
              event.currentTarget.disabled = false;
            }
          },
        },
      }),
    );
}

async function signedIn(root, me) {
  const account = me.account;
  const status = el("p", { class: "account-error", role: "alert", hidden: true });
  const connect = await connectButtons(me, status).catch(() => []);
  const run = (action) => async (event) => {
    event.currentTarget.disabled = true;
    try {
      await action();
      location.assign("/");
    } catch (error) {
      status.textContent = error.message;
      status.hidden = false;
      event.currentTarget.disabled = false;
    }
  };
  root.replaceChildren(
    el(
      "p",
      { class: "account-who", "data-testid": "account-who" },
      el("span", { class: "account-name", text: account.name || account.email }),
      account.name ? el("span", { class: "account-email", text: account.email }) : null,
    ),
    el(
      "div",
      { class: "account-actions" },
      el("button", {
        type: "button",
        class: "btn-ghost",
        "data-testid": "account-signout",
        text: "Sign out",
        on: { click: run(async () => adoptSession(await call("POST", "/auth/logout"))) },
      }),
      el("button", {
        type: "button",
        class: "btn-ghost",
        "data-testid": "account-signout-all",
        text: "Sign out everywhere",
        on: {
          click: run(async () => {
            await call("DELETE", "/auth/sessions");
            await renewSession();
          }),
        },
      }),
    ),
    // (replaceChildren would show a null as the text "null": only nodes go in.)
    ...(connect.length ? [el("div", { class: "account-actions" }, connect)] : []),
    // The account's pages. Admins (GET /auth/me says the role) get the way to theirs;
    // the page and its API check the role again, the link only saves typing it.
    el(
      "div",
      { class: "account-actions" },
      el("a", { class: "btn-ghost", href: "/keys", "data-testid": "account-keys", text: "API keys" }),
      me.role === "admin" ? el("a", { class: "btn-ghost", href: "/admin", "data-testid": "account-admin", text: "Admin" }) : null,
    ),
    status,
  );
}

/** Fill the menu once the session is known; quiet if anything fails. */
export async function initAccountMenu(root) {
  if (!root) return;
  try {
    const session = await getSession();
    const checked = await fetch("/auth/device-session/validate", {
      headers: { Accept: "application/json", Authorization: `Bearer ${session.session_id}` },
      credentials: "same-origin",
    });
    const body = checked.ok ? await checked.json() : null;
    if (!body?.account_id) {
      anonymous(root);
      return;
    }
    await signedIn(root, await call("GET", "/auth/me"));
  } catch {
    anonymous(root);
  }
}
