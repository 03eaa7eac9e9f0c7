// /reset-password: with `?token=` from the mail, a form for the new password (POST
// /auth/password/reset); without one, a form to ask for a link (POST
// /auth/password/forgot). The token leaves the address bar at once, so it is not kept
// in history or sent on as a Referer (docs/pages.md).

import { initLayout, announce } from "../layout.js";

const $ = (selector) => document.querySelector(selector);
const status = $("[data-reset-status]");
const resetForm = $("[data-reset-form]");
const forgotForm = $("[data-forgot-form]");

function say(text) {
  status.textContent = text;
  announce(text);
}

async function post(path, body) {
  // No session needed: the header is what a cross-site form cannot send (api/csrf.py).
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json", "X-Requested-With": "fetch" },
    credentials: "same-origin",
    body: JSON.stringify(body),
  });
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  return { ok: response.ok, status: response.status, data };
}

const params = new URLSearchParams(location.search);
const token = params.get("token");
if (token) history.replaceState(null, "", location.pathname);

async function start() {
  const config = await fetch("/api/config", { headers: { Accept: "application/json" } })
    .then((r) => (r.ok ? r.json() : null))
    .catch(() => null);
  if (config && config.features && config.features.password_reset === false) {
    say("Password reset by email is not available on this server. Ask its operator.");
    return;
  }
  if (token) {
    resetForm.hidden = false;
    $("#reset-password").focus();
  } else {
    forgotForm.hidden = false;
    $("#forgot-email").focus();
  }
}

resetForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const password = $("#reset-password").value;
  if (password !== $("#reset-again").value) {
    say("The two passwords differ. Type the same one twice.");
    $("#reset-again").focus();
    return;
  }
  const out = await post("/auth/password/reset", { token, password });
  if (out.ok) {
    resetForm.hidden = true;
    say("Your password is changed, and your other sessions are signed out. Sign in with the new password.");
  } else {
    say(out.data?.message || `That did not work (HTTP ${out.status}).`);
    if (out.data?.error === "invalid_reset_token") {
      resetForm.hidden = true;
      forgotForm.hidden = false;
    }
  }
});

forgotForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const out = await post("/auth/password/forgot", { email: $("#forgot-email").value });
  say(out.data?.message || `That did not work (HTTP ${out.status}).`);
});

initLayout();
start().finally(() => document.body.classList.add("ready"));
