// Home page: the big chatbox. Sending starts the turn over REST and goes at once to
// /chat/{conversation_id}, where the answer streams.

import { initLayout } from "../layout.js";
import { Sidebar } from "../sidebar.js";
import { Chatbox } from "../chatbox.js";
import { refreshCoins } from "../coins.js";
import { showServerStatus } from "../server-status.js";
import { getSession } from "../session.js";
import { describeError, startTurn } from "../turns.js";

initLayout();
const sidebar = new Sidebar(document.getElementById("sidebar"));
const errorNode = document.querySelector("[data-home-error]");

const chatbox = new Chatbox(document.querySelector("[data-chatbox]"), {
  onNotice(text) {
    errorNode.textContent = text;
    errorNode.hidden = !text;
  },
  async onSubmit(payload, { clear }) {
    chatbox.setBusy(true);
    errorNode.hidden = true;
    try {
      const started = await startTurn(payload);
      clear();
      location.assign(`/chat/${encodeURIComponent(started.conversation_id)}`);
    } catch (error) {
      errorNode.textContent = describeError(error);
      errorNode.hidden = false;
      chatbox.setBusy(false);
      if (chatbox.voice.on) chatbox.voice.listen();
    }
  },
});

chatbox.focus();
getSession()
  .then(() => Promise.all([sidebar.load(), chatbox.loadModels(), refreshCoins(), showServerStatus()]))
  .then(() => chatbox.featuresReady)
  .then(() => chatbox.voice.remembered && chatbox.voice.start())
  .catch((error) => {
    errorNode.textContent = describeError(error);
    errorNode.hidden = false;
  })
  .finally(() => document.body.classList.add("ready"));

window.addEventListener("pageshow", (event) => event.persisted && location.reload());
