// Chat page: the conversation so far, the answer streaming in (resumed after a
// reload from the last chunk seen), follow-ups, stop / copy / regenerate / retry,
// and branches: edit a question, regenerate an answer, `< 2/3 >` (js/branches.js).

import { api } from "../api.js";
import { openEditor, refocus, switchBranch } from "../branches.js";
import { announce, initLayout, showTransport } from "../layout.js";
import { Sidebar } from "../sidebar.js";
import { Chatbox } from "../chatbox.js";
import { Thread } from "../thread.js";
import { StreamFollower } from "../transport/follower.js";
import { refreshCoins, updateCoinsFrom } from "../coins.js";
import { routingMemo } from "../resume-store.js";
import { getSession } from "../session.js";
import { describeError, startTurn, takePending } from "../turns.js";
import { copyText, el, flashCopied } from "../util.js";

const conversationId = document.body.dataset.conversationId;
const CONTINUE_PROMPT = "Continue from where you stopped.";

initLayout();
const noticeNode = document.querySelector("[data-chat-notice]");
const titleNode = document.querySelector("[data-conversation-title]");
const thread = new Thread(document.querySelector("[data-thread]"), document.querySelector("[data-chat-scroll]"));
const follower = new StreamFollower({ onTransport: showTransport });
const sidebar = new Sidebar(document.getElementById("sidebar"), {
  currentId: conversationId,
  onDeleted: (id) => id === conversationId && location.assign("/"),
});
const chatbox = new Chatbox(document.querySelector("[data-chatbox]"), { onSubmit: send, onStop: stop, onNotice: notice });
let active = null; // {view, controller} of the answer being followed

function notice(text) {
  noticeNode.textContent = text || "";
  noticeNode.hidden = !text;
}

function setTitle(title) {
  titleNode.textContent = title || "New conversation";
  document.title = `${title || "Conversation"} · Vedika`;
}

// ---------------------------------------------------------------- following an answer

async function follow(view) {
  const controller = new AbortController();
  active = { view, controller };
  chatbox.setStreaming(true);
  announce("Generating the answer…");
  const memo = routingMemo.load(view.id);
  if (memo) view.setRouting(memo);
  await follower.follow({
    conversationId,
    messageId: view.id,
    getAfter: () => view.last,
    signal: controller.signal,
    onEvent(event) {
      if (event.type === "credits_info" || event.type === "credits_exhausted" || event.type === "stream_complete") {
        updateCoinsFrom(event);
      }
      return view.handle(event);
    },
  });
  if (active?.view === view) active = null;
  chatbox.setStreaming(false);
  announce({ complete: "Answer complete.", stopped: "Answer stopped.", interrupted: "Answer interrupted.", error: "The answer failed." }[view.status] || "");
  sidebar.refreshSoon();
  refreshCoins(); // a failed answer may have been refunded
  if (chatbox.voice.on) chatbox.voice.answer(view.status === "error" ? view.error : view.text);
}

async function stop() {
  if (!active) return;
  try {
    await api.stop(active.view.id);
  } catch (error) {
    notice(describeError(error));
  }
}

// ---------------------------------------------------------------- sending

async function send(payload, { clear } = {}) {
  notice("");
  chatbox.setBusy(true);
  const request = { ...payload, conversation_id: conversationId };
  // Continue from the branch shown, whichever another tab shows.
  const shown = thread.lastAssistant();
  if (shown && !shown.id.startsWith("pending-")) request.parent_id = shown.id;
  if (follower.degraded) {
    await sendBlocking(request, clear);
    return;
  }
  let started;
  try {
    started = await startTurn(request);
  } catch (error) {
    notice(describeError(error));
    chatbox.setBusy(false);
    if (chatbox.voice.on) chatbox.voice.listen();
    return;
  }
  clear?.();
  thread.append({ role: "user", message_id: started.user_message_id, content: request.message });
  const view = thread.append({ role: "assistant", message_id: started.message_id, status: "streaming", content: "", model: started.model, model_name: started.model_name, mode: request.mode });
  view.setRouting(started);
  view.prepareResume();
  updateCoinsFrom(started);
  chatbox.setBusy(false);
  await follow(view);
}

/** Neither WebSocket nor SSE works here: one blocking POST /ai/chat per turn. */
async function sendBlocking(request, clear) {
  clear?.();
  thread.append({ role: "user", message_id: "", content: request.message });
  const view = thread.append({ role: "assistant", message_id: `pending-${request.client_message_id}`, status: "streaming", content: "", mode: request.mode });
  view.prepareResume();
  chatbox.setStreaming(true);
  chatbox.setBusy(false);
  showTransport("rest");
  announce("Generating the answer…");
  try {
    const response = await api.chatBlocking(request);
    updateCoinsFrom(response);
    thread.adopt(view.id, response.message_id);
    view.completeWith(response);
  } catch (error) {
    view.failWith(describeError(error));
  }
  chatbox.setStreaming(false);
  announce(view.status === "error" ? "The answer failed." : "Answer complete.");
  sidebar.refreshSoon();
  if (chatbox.voice.on) chatbox.voice.answer(view.status === "error" ? view.error : view.text);
}

function resend(messageId, text) {
  const question = text ?? thread.questionFor(messageId);
  if (!question || active) return;
  send(chatbox.payload(question));
}

// ---------------------------------------------------------------- branches

/** A turn on another branch (`{edit_of}` or `{regenerate}`): sent, then the new path
 * is shown and its answer followed. */
async function branchTurn(fields, question) {
  if (active || !question) return;
  notice("");
  chatbox.setBusy(true);
  const request = { ...chatbox.payload(question), attachments: undefined, conversation_id: conversationId, ...fields };
  try {
    if (follower.degraded) {
      updateCoinsFrom(await api.chatBlocking(request));
      await reload();
      chatbox.setBusy(false);
      return;
    }
    const started = await startTurn(request);
    updateCoinsFrom(started);
    await reload();
    chatbox.setBusy(false);
    const view = thread.view(started.message_id);
    if (view) {
      view.setRouting(started);
      view.prepareResume();
      await follow(view);
    }
  } catch (error) {
    notice(describeError(error));
    chatbox.setBusy(false);
  }
}

async function showVersion(button) {
  const target = button.dataset.target;
  if (!target || active) return;
  try {
    const conversation = await switchBranch(conversationId, target);
    thread.renderAll(conversation.messages || []);
    const shown = (conversation.messages || []).find((m) => m.message_id === target);
    if (shown) announce(`Version ${shown.sibling_index + 1} of ${shown.sibling_count}.`);
    refocus(document.querySelector("[data-thread]"), target, button.dataset.step);
    const last = thread.lastAssistant();
    if (last && last.status === "streaming") {
      last.prepareResume();
      await follow(last);
    }
  } catch (error) {
    notice(describeError(error));
  }
}

// ---------------------------------------------------------------- actions on messages

document.querySelector("[data-thread]").addEventListener("click", async (event) => {
  const button = event.target.closest("[data-action]");
  if (!button) return;
  const article = button.closest("[data-message-id]");
  const view = article ? thread.view(article.dataset.messageId) : null;
  switch (button.dataset.action) {
    case "copy-code": {
      const code = button.closest(".codeblock")?.querySelector("pre");
      flashCopied(button, await copyText(code?.textContent || ""));
      break;
    }
    case "copy":
      if (view) flashCopied(button, await copyText(view.text));
      break;
    case "regenerate": // a new answer to the same question; the old one stays a version
      if (view) branchTurn({ regenerate: view.id }, thread.questionFor(view.id));
      break;
    case "retry":
      if (view) resend(view.id);
      break;
    case "edit":
      if (article && !active) {
        openEditor(article, { onSubmit: (text) => branchTurn({ edit_of: article.dataset.messageId }, text) });
      }
      break;
    case "branch":
      showVersion(button);
      break;
    case "continue":
      if (view) resend(view.id, CONTINUE_PROMPT);
      break;
    default:
  }
});

// ---------------------------------------------------------------- loading

async function reload() {
  const conversation = await api.conversation(conversationId);
  performance.mark("vedika:conversation-fetched");
  setTitle(conversation.title);
  thread.renderAll(conversation.messages || []);
  performance.mark("vedika:conversation-rendered");
  return conversation;
}

async function load() {
  await getSession();
  sidebar.load();
  chatbox.loadModels();
  refreshCoins();
  const warm = follower.warmUp();
  let conversation;
  try {
    conversation = await reload();
  } catch (error) {
    document.body.classList.add("missing");
    const text = error.status === 404
      ? "This conversation does not exist, or it belongs to another device."
      : describeError(error);
    document.querySelector("[data-thread]").replaceChildren(
      el("div", { class: "empty-state", role: "alert" }, el("p", { text }), el("a", { class: "btn-accent", href: "/" }, "Start a new chat")),
    );
    return;
  }
  const pending = takePending(conversationId);
  let last = thread.lastAssistant();
  const messages = conversation.messages || [];
  const newest = messages[messages.length - 1];
  if (pending && newest?.role === "user" && !thread.view(pending.message_id)) {
    // The answer row is not visible yet: follow the id /ai/chat/start gave us.
    last = thread.append({ role: "assistant", message_id: pending.message_id, status: "streaming", content: "", model: pending.model, model_name: pending.model_name, mode: pending.mode });
  }
  document.body.classList.add("ready");
  // Voice mode left on by the previous page: read this answer when it is done, or listen.
  const streaming = last && last.status === "streaming";
  let followed = !streaming;
  chatbox.featuresReady?.then(() => {
    if (!chatbox.voice.remembered) return;
    chatbox.voice.start({ listen: false });
    if (!followed) return; // follow() reads the answer, then listens
    // Just asked from the home page, and already answered: read it, then listen.
    if (pending && last && last.status !== "streaming") chatbox.voice.answer(last.text);
    else chatbox.voice.listen();
  });
  if (streaming) {
    last.prepareResume();
    await warm;
    await follow(last);
    followed = true;
  } else {
    await warm;
  }
}

document.addEventListener("vedika:renamed", (event) => setTitle(event.detail.title));
window.addEventListener("pagehide", () => active?.view.saveProgress());
window.addEventListener("pageshow", (event) => event.persisted && location.reload());

load()
  .catch((error) => notice(describeError(error)))
  .finally(() => document.body.classList.add("ready"));
chatbox.focus();
