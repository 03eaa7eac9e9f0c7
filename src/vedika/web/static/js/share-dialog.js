// The chat page's conversation tools (issue 18): the share dialog (create a link, copy
// it, allow indexing, revoke) and the export buttons (Markdown, JSON). A module of its
// own, loaded by chat.html next to the page's: it only needs the conversation id.

import { authFetch, request } from "./api.js";
import { announce } from "./layout.js";
import { copyText } from "./util.js";

const conversationId = document.body.dataset.conversationId || "";
const base = `/ai/conversations/${encodeURIComponent(conversationId)}`;

const dialog = document.querySelector("[data-share-dialog]");
const openButton = document.querySelector("[data-testid=share-open]");

function part(name) {
  return dialog.querySelector(`[data-share=${name}]`);
}

function say(text) {
  part("status").textContent = text;
}

/** Show the link (or that there is none) in the dialog. */
function showLink(link) {
  const shared = Boolean(link);
  part("url").value = shared ? link.url : "";
  part("url-row").hidden = !shared;
  part("revoke").hidden = !shared;
  part("create").textContent = shared ? "Update link to now" : "Create link";
  if (shared) part("indexing").checked = link.allow_indexing;
}

async function current() {
  try {
    return await request("GET", `${base}/share`);
  } catch (error) {
    if (error.status === 404 && error.code === "share_not_found") return null;
    throw error;
  }
}

async function open() {
  showLink(null);
  say("Loading…");
  dialog.showModal();
  try {
    const link = await current();
    showLink(link);
    say(link ? "Anyone with the link can read this conversation as it was when you shared it." : "This conversation is not shared.");
  } catch (error) {
    say(`Could not read the link: ${error.message}`);
  }
}

async function create() {
  say("Sharing…");
  try {
    const link = await request("POST", `${base}/share`, { body: { allow_indexing: part("indexing").checked } });
    showLink(link);
    say("Link ready. Later messages appear only when you update the link.");
    announce("Share link ready");
    part("url").focus();
    part("url").select();
  } catch (error) {
    say(`Could not share: ${error.message}`);
  }
}

async function revoke() {
  say("Revoking…");
  try {
    await request("DELETE", `${base}/share`);
    showLink(null);
    say("Link revoked: it no longer opens.");
    announce("Share link revoked");
    part("create").focus();
  } catch (error) {
    say(`Could not revoke: ${error.message}`);
  }
}

async function copy() {
  const ok = await copyText(part("url").value);
  say(ok ? "Link copied." : "Copy the link by hand: it is selected.");
  if (!ok) part("url").select();
}

async function download(format) {
  const response = await authFetch(`${base}/export?format=${format}`);
  if (!response.ok) {
    announce("Export failed");
    return;
  }
  const disposition = response.headers.get("Content-Disposition") || "";
  const name = /filename="([^"]+)"/.exec(disposition)?.[1] || `conversation.${format}`;
  const url = URL.createObjectURL(await response.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  announce(`Exported as ${name}`);
}

if (dialog && openButton && conversationId) {
  openButton.hidden = false;
  openButton.addEventListener("click", open);
  part("create").addEventListener("click", create);
  part("revoke").addEventListener("click", revoke);
  part("copy").addEventListener("click", copy);
  part("close").addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => openButton.focus());
  for (const button of document.querySelectorAll("[data-export]")) {
    button.hidden = false;
    button.addEventListener("click", () => download(button.dataset.export));
  }
}
