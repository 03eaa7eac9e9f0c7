// /signin and /signup (templates/account.html): email + password through the public
// API (POST /auth/login, /auth/register), a button for each identity provider the
// server lists (GET /auth/oidc/providers), errors said in a role=alert paragraph.
// Signing in keeps this device's anonymous conversations (the server claims them).

import { initLayout } from "../layout.js";
import { Sidebar } from "../sidebar.js";
import { adoptCookieSessionNext, adoptSession, getSession } from "../session.js";
import { el } from "../util.js";

// What the error codes of a sign-on that came back (`/signin?error=...`) mean.
const MESSAGES = {
  account_exists:
    "An account with this email already exists. Sign in with your password, then connect your provider from the account.",
  identity_taken: "That identity already signs in to another account.",
  oidc_state_invalid: "That sign-in expired or was started in another browser. Please try again.",
  oidc_refused: "The identity provider did not sign you in.",
  oidc_token_invalid: "The sign-in could not be verified. Please try again.",
  oidc_provider_unavailable: "The identity provider cannot be reached right now. Try again shortly.",
  oidc_email_missing: "The identity provider did not share your email address, which an account needs.",
  oidc_email_unverified: "The identity provider says your email address is not verified yet.",
  not_signed_in: "Sign in to your account again, then connect it.",
  rate_limited: "Too many attempts. Wait a minute and try again.",
  account_disabled: "This account is disabled. Ask the operator of this server, or continue without signing in.",
};

const root = document.querySelector("[data-account-mode]");
const mode = root.dataset.accountMode;
const form = root.querySelector("[data-account-form]");
const errorNode = root.querySelector("[data-account-error]");
const params = new URLSearchParams(location.search);

/** A local path to go to afterwards; anything else is home. */
function nextPath() {
  const next = params.get("next") || "/";
  return next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/\\") ? next : "/";
}

function showError(text) {
  errorNode.textContent = text;
  errorNode.hidden = !text;
}

initLayout();
const sidebar = new Sidebar(document.getElementById("sidebar"));
const next = nextPath();
root.querySelector("[data-account-switch]").href =
  `${mode === "signup" ? "/signin" : "/signup"}?next=${encodeURIComponent(next)}`;
const code = params.get("error");
if (code) showError(MESSAGES[code] || "The sign-in did not work. Please try again.");

async function loadProviders() {
  const response = await fetch("/auth/oidc/providers", { headers: { Accept: "application/json" } });
  const providers = response.ok ? await response.json() : [];
  if (!providers.length) return;
  const list = root.querySelector("[data-provider-list]");
  list.replaceChildren(
    ...providers.map((provider) =>
      el(
        "li",
        {},
        el("a", {
          class: "btn-ghost account-provider",
          href: `/auth/oidc/${encodeURIComponent(provider.id)}/start?next=${encodeURIComponent(next)}`,
          "data-testid": `provider-${provider.id}`,
          text: `Continue with ${provider.name}`,
          on: { click: () => adoptCookieSessionNext() },
        }),
      ),
    ),
  );
  root.querySelector("[data-account-providers]").hidden = false;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("");
  const data = new FormData(form);
  const body = { email: String(data.get("email") || "").trim(), password: String(data.get("password") || "") };
  if (mode === "signup" && data.get("name")) body.name = String(data.get("name")).trim();
  if (!body.email || !body.password) {
    showError("Enter your email and password.");
    (body.email ? form.elements.password : form.elements.email).focus();
    return;
  }
  const submit = form.querySelector("[type=submit]");
  submit.disabled = true;
  try {
    const session = await getSession(); // this device: its questions are claimed
    const response = await fetch(mode === "signup" ? "/auth/register" : "/auth/login", {
      method: "POST",
      headers: {
        Accept: "application/json",
        "Content-Type": "application/json",
        "X-Requested-With": "fetch",
        Authorization: `Bearer ${session.session_id}`,
      },
      credentials: "same-origin",
      body: JSON.stringify(body),
    });
    const answer = await response.json().catch(() => null);
    if (!response.ok) {
      showError(answer?.message || `The server answered HTTP ${response.status}.`);
      form.elements.password.focus();
      submit.disabled = false;
      return;
    }
    adoptSession(answer);
    location.assign(next);
  } catch (error) {
    showError(error.message);
    submit.disabled = false;
  }
});

getSession()
  .then(() => Promise.all([sidebar.load(), loadProviders()]))
  .catch((error) => showError(error.message))
  .finally(() => {
    document.body.classList.add("ready");
    if (!code) form.elements.email.focus();
  });
