// /keys: the signed-in account's API keys through the public API (docs/pages.md):
// create one (POST /auth/api-keys: its secret is in that answer only, shown once),
// list them with their last use (GET), revoke one (DELETE /auth/api-keys/{id}).

import { initLayout, announce } from "../layout.js";
import { Sidebar } from "../sidebar.js";
import { refreshCoins } from "../coins.js";
import { ApiError, errorText, request } from "../api.js";
import { getSession } from "../session.js";
import { el, utcTime as when } from "../util.js";

const $ = (selector) => document.querySelector(selector);
const status = $("[data-keys-status]");
const rows = $("[data-keys-rows]");
const fresh = $("[data-key-new]");

function say(text, { focus = false } = {}) {
  status.textContent = text;
  announce(text);
  if (focus) status.focus(); // the row with the pressed button is gone: focus the outcome
}

function keyRow(key) {
  const revoke = el("button", {
    type: "button",
    class: "btn-danger btn-xs",
    text: "Revoke",
    "aria-label": `Revoke the key ${key.name}`,
    dataset: { testid: "key-revoke" },
    on: { click: () => revokeKey(key) },
  });
  return el(
    "tr",
    { dataset: { testid: "key-row", keyId: key.id } },
    el("td", { text: key.name }),
    el("td", {}, el("code", { text: `${key.prefix}…` })),
    el("td", { text: when(key.created_at) }),
    el("td", { text: when(key.expires_at) }),
    el("td", { text: when(key.last_used_at), dataset: { testid: "key-last-used" } }),
    el("td", { class: "admin-actions" }, revoke),
  );
}

async function loadKeys() {
  const { api_keys: keys } = await request("GET", "/auth/api-keys");
  rows.replaceChildren(...keys.map(keyRow));
  $("[data-keys-empty]").hidden = keys.length > 0;
  return keys.length;
}

async function revokeKey(key) {
  try {
    await request("DELETE", `/auth/api-keys/${encodeURIComponent(key.id)}`);
    await loadKeys();
    say(`The key ${key.name} is revoked: programs using it are refused from now on.`, { focus: true });
  } catch (error) {
    say(errorText(error), { focus: true });
  }
}

$("[data-key-form]").addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = $("#key-name").value.trim();
  if (!name) {
    say("Give the key a name.");
    return;
  }
  try {
    const made = await request("POST", "/auth/api-keys", {
      body: { name, expires_in_days: Number($("#key-days").value) },
    });
    $("#key-secret").value = made.key;
    fresh.hidden = false;
    $("#key-name").value = "";
    await loadKeys();
    say(`The key ${made.name} is made. Copy it now: it is not shown again.`);
    $("#key-secret").focus();
    $("#key-secret").select();
  } catch (error) {
    say(errorText(error));
  }
});

$("[data-key-copy]").addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText($("#key-secret").value);
    say("Copied.");
  } catch {
    $("#key-secret").select();
    say("Select the key and copy it.");
  }
});

async function start() {
  await getSession();
  try {
    await request("GET", "/auth/me");
  } catch (error) {
    const signedOut = error instanceof ApiError && error.status === 401;
    say(signedOut ? "Sign in to make API keys: a key acts as your account." : errorText(error));
    return;
  }
  const n = await loadKeys();
  $("[data-keys-body]").hidden = false;
  say(n === 1 ? "You have 1 key." : `You have ${n} keys.`);
}

initLayout();
const sidebar = new Sidebar(document.getElementById("sidebar"));
start()
  .then(() => Promise.all([sidebar.load(), refreshCoins()]))
  .catch((error) => say(errorText(error)))
  .finally(() => document.body.classList.add("ready"));
