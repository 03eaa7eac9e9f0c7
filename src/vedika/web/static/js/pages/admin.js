// The admin page: users (search, disable, enable, grant coins), usage per day, model
// health and the audit log, all through the public API (/admin/*) with the admin's
// session, like any client (docs/pages.md). Whether the visitor is an admin is the
// API's answer: GET /auth/me's `role`, then 401/403 from the calls themselves.

import { initLayout, announce } from "../layout.js";
import { Sidebar } from "../sidebar.js";
import { refreshCoins } from "../coins.js";
import { ApiError, errorText, request } from "../api.js";
import { getSession } from "../session.js";
import { el, utcTime as when } from "../util.js";

const $ = (selector) => document.querySelector(selector);
const status = $("[data-admin-status]");
const body = $("[data-admin-body]");
const grantForm = $("[data-grant-form]");
let query = "";
let cursor = null;
let grantTarget = null; // {id, email}

function say(text, { focus = false } = {}) {
  status.textContent = text;
  announce(text);
  // After an action re-renders the table, keyboard focus goes to the outcome rather
  // than being lost with the button that was pressed.
  if (focus) status.focus();
}

// ------------------------------------------------------------------ users

function userRow(user) {
  const toggle = el("button", {
    type: "button",
    class: user.disabled ? "btn-ghost btn-xs" : "btn-danger btn-xs",
    text: user.disabled ? "Enable" : "Disable",
    "aria-label": `${user.disabled ? "Enable" : "Disable"} ${user.email}`,
    dataset: { testid: "toggle-user" },
    on: { click: () => setDisabled(user, !user.disabled) },
  });
  const grant = el("button", {
    type: "button",
    class: "btn-ghost btn-xs",
    text: "Grant coins",
    "aria-label": `Grant coins to ${user.email}`,
    dataset: { testid: "grant-user" },
    on: { click: () => openGrant(user) },
  });
  return el(
    "tr",
    { dataset: { userId: user.id, testid: "user-row" } },
    el("td", { text: user.email }),
    el("td", { text: user.name || "" }),
    el("td", { text: user.role }),
    el("td", { text: when(user.created_at) }),
    el("td", { text: when(user.last_seen) }),
    el("td", { text: String(user.balance.remaining), dataset: { testid: "user-balance" } }),
    el("td", { text: user.disabled ? "disabled" : "active", dataset: { testid: "user-status" } }),
    el("td", { class: "admin-actions" }, toggle, grant),
  );
}

async function loadUsers({ more = false } = {}) {
  const page = await request("GET", "/admin/users", {
    query: { q: query, limit: 50, cursor: more ? cursor : null },
  });
  const tbody = $("[data-users]");
  if (!more) tbody.replaceChildren();
  for (const user of page.users) tbody.append(userRow(user));
  if (!more && page.users.length === 0) {
    tbody.append(el("tr", {}, el("td", { colspan: 8, text: "No users match." })));
  }
  cursor = page.next_cursor;
  $("[data-users-more]").hidden = !cursor;
  return page.users.length;
}

async function setDisabled(user, disabled) {
  try {
    await request("POST", `/admin/users/${encodeURIComponent(user.id)}/${disabled ? "disable" : "enable"}`);
    await Promise.all([loadUsers(), loadAudit()]);
    say(`${user.email} is ${disabled ? "disabled" : "enabled"}.`, { focus: true });
  } catch (error) {
    say(errorText(error));
  }
}

function openGrant(user) {
  grantTarget = user;
  $("[data-grant-legend]").textContent = `Grant coins to ${user.email}`;
  grantForm.hidden = false;
  grantForm.reset();
  $("#grant-amount").focus();
}

function closeGrant({ focus = false } = {}) {
  grantForm.hidden = true;
  grantTarget = null;
  if (focus) $("#admin-q").focus();
}

async function submitGrant(event) {
  event.preventDefault();
  if (!grantTarget) return;
  const amount = Number.parseInt($("#grant-amount").value, 10);
  const reason = $("#grant-reason").value.trim();
  try {
    const out = await request("POST", `/admin/users/${encodeURIComponent(grantTarget.id)}/coins`, {
      body: { amount, reason },
    });
    const text = `Granted ${out.granted} coins to ${grantTarget.email}: ${out.balance.remaining} left today.`;
    closeGrant();
    await Promise.all([loadUsers(), loadAudit(), refreshCoins()]);
    say(text, { focus: true });
  } catch (error) {
    say(errorText(error));
  }
}

// ------------------------------------------------------------------ usage, health, audit

async function loadUsage() {
  const days = $("[data-usage-days]").value;
  const usage = await request("GET", "/admin/usage", { query: { days } });
  const rows = [...usage.days].reverse().map((day) =>
    el(
      "tr",
      {},
      el("td", { text: day.day }),
      el("td", { text: String(day.turns) }),
      el("td", { text: String(day.tokens) }),
      el("td", { text: String(day.coins) }),
      el(
        "td",
        { text: Object.entries(day.models).map(([m, t]) => `${m}: ${t.turns} turns, ${t.coins} coins`).join("; ") },
      ),
    ),
  );
  $("[data-usage]").replaceChildren(...rows);
}

function ms(value) {
  return value === null || value === undefined ? "–" : `${Math.round(value)} ms`;
}

async function loadHealth() {
  const health = await request("GET", "/admin/models/health", { query: { days: 7 } });
  const rows = health.models.map((m) =>
    el(
      "tr",
      {},
      el("td", { text: m.model }),
      el("td", { text: String(m.answers) }),
      el("td", { text: String(m.errors) }),
      el("td", { text: `${(m.error_rate * 100).toFixed(1)} %` }),
      el("td", { text: ms(m.latency_ms.p50) }),
      el("td", { text: ms(m.latency_ms.p95) }),
    ),
  );
  $("[data-health]").replaceChildren(...rows);
}

function detailText(detail) {
  if (!detail) return "";
  return Object.entries(detail)
    .filter(([key]) => key !== "email")
    .map(([key, value]) => `${key}: ${value}`)
    .join(", ");
}

async function loadAudit() {
  const log = await request("GET", "/admin/audit", { query: { limit: 50 } });
  const rows = log.entries.map((e) =>
    el(
      "tr",
      { dataset: { testid: "audit-row" } },
      el("td", { text: when(e.created_at) }),
      el("td", { text: e.admin.email }),
      el("td", { text: e.action }),
      el("td", { text: e.detail?.email || e.target || "" }),
      el("td", { text: detailText(e.detail) }),
    ),
  );
  if (rows.length === 0) rows.push(el("tr", {}, el("td", { colspan: 5, text: "No admin actions yet." })));
  $("[data-audit]").replaceChildren(...rows);
}

// ------------------------------------------------------------------ start

async function start() {
  await getSession();
  let me;
  try {
    me = await request("GET", "/auth/me");
  } catch (error) {
    const signedOut = error instanceof ApiError && error.status === 401;
    say(signedOut ? "Sign in with an admin account to use this page." : errorText(error));
    return;
  }
  if (me.role !== "admin") {
    say("This page is for the admins of this server; your account is not one.");
    return;
  }
  await Promise.all([loadUsers(), loadUsage(), loadHealth(), loadAudit()]);
  body.hidden = false;
  say(`Signed in as ${me.account.email} (admin).`);
}

$("[data-user-search]").addEventListener("submit", async (event) => {
  event.preventDefault();
  query = $("#admin-q").value.trim();
  try {
    const n = await loadUsers();
    say(n === 1 ? "1 user found." : `${n} users found.`);
  } catch (error) {
    say(errorText(error));
  }
});
$("[data-users-more]").addEventListener("click", () => loadUsers({ more: true }).catch((e) => say(errorText(e))));
$("[data-usage-days]").addEventListener("change", () => loadUsage().catch((e) => say(errorText(e))));
grantForm.addEventListener("submit", submitGrant);
$("[data-grant-cancel]").addEventListener("click", () => closeGrant({ focus: true }));
grantForm.addEventListener("keydown", (event) => event.key === "Escape" && closeGrant({ focus: true }));

initLayout();
const sidebar = new Sidebar(document.getElementById("sidebar"));
start()
  .then(() => Promise.all([sidebar.load(), refreshCoins()]))
  .catch((error) => say(errorText(error)))
  .finally(() => document.body.classList.add("ready"));
