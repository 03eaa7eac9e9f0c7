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

function signedIn(root, account) {
  const status = el("p", { class: "account-error", role: "alert", hidden: true });
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
    const me = await call("GET", "/auth/me");
    signedIn(root, me.account);
  } catch {
    anonymous(root);
  }
}
