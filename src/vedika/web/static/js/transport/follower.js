// Follows one answer to its terminal event over the best transport that works:
// WebSocket (with resume) -> Server-Sent Events (with ?after=) -> REST polling.
// A transport that fails to connect is not tried again on this page; one that
// drops mid-answer is reconnected with the last chunk id seen, a few times, before
// the next one takes over. The page learns which transport is in use through
// `onTransport` ("websocket" | "sse" | "rest").

import { SocketHub } from "./socket.js";
import { followSse } from "./sse.js";
import { followByPolling } from "./poll.js";
import { sleep } from "../util.js";

const ORDER = ["websocket", "sse", "rest"];
const MAX_DROPS = 3;
// A fallback is not forever: after this long, the next answer tries the WebSocket again
// (a restarted server or a network that came back should not leave the page on polling).
const RETRY_BEST_AFTER_MS = 30000;

export class StreamFollower {
  constructor({ onTransport } = {}) {
    this.mode = "websocket";
    this.degradedAt = 0;
    this.hub = new SocketHub();
    this.onTransport = onTransport || (() => {});
  }

  /** Whether streaming transports are known to fail (so new turns should block). */
  get degraded() {
    this.#maybeRecover();
    return this.mode === "rest";
  }

  #degrade(from) {
    const next = ORDER[ORDER.indexOf(from) + 1] || "rest";
    if (ORDER.indexOf(next) > ORDER.indexOf(this.mode)) {
      this.mode = next;
      this.degradedAt = Date.now();
    }
  }

  #maybeRecover() {
    if (this.mode !== "websocket" && Date.now() - this.degradedAt > RETRY_BEST_AFTER_MS) {
      this.mode = "websocket";
    }
  }

  /** Try the WebSocket early so the first answer does not wait for the handshake. */
  async warmUp() {
    if (this.mode !== "websocket") return;
    try {
      await this.hub.open();
      this.onTransport("websocket");
    } catch {
      this.#degrade("websocket");
    }
  }

  /**
   * Deliver every event of `messageId` to `onEvent(event, transport)` until the
   * terminal one. `getAfter()` gives the last chunk id already shown (for resume).
   * `onEvent` returns "done" after a terminal event and "resync" on a gap.
   */
  async follow({ conversationId, messageId, getAfter, onEvent, signal }) {
    this.#maybeRecover();
    let drops = 0;
    while (!signal?.aborted) {
      const mode = this.mode;
      let outcome;
      if (mode === "websocket") outcome = await this.#viaSocket(conversationId, messageId, getAfter, onEvent, signal);
      else if (mode === "sse") outcome = await this.#viaSse(messageId, getAfter, onEvent, signal);
      else {
        this.onTransport("rest");
        return followByPolling({ conversationId, messageId }, onEvent, signal);
      }
      if (outcome === "done") return "done";
      if (outcome === "failed") {
        this.#degrade(mode);
        continue;
      }
      drops += 1; // "lost": it worked, then broke
      if (drops >= MAX_DROPS) {
        this.#degrade(mode);
        drops = 0;
      } else {
        await sleep(300 * drops);
      }
    }
    return "done";
  }

  async #viaSocket(conversationId, messageId, getAfter, onEvent, signal) {
    try {
      await this.hub.open();
    } catch {
      return "failed";
    }
    this.onTransport("websocket");
    return new Promise((resolve) => {
      let detach = () => {};
      let settled = false;
      const settle = (outcome) => {
        if (settled) return;
        settled = true;
        detach();
        signal?.removeEventListener("abort", onAbort);
        resolve(outcome);
      };
      const onAbort = () => settle("done");
      signal?.addEventListener("abort", onAbort);
      this.hub
        .subscribe(
          { conversationId, messageId, after: getAfter() },
          (event) => {
            const verdict = onEvent(event, "websocket");
            if (verdict === "done") settle("done");
            else if (verdict === "resync") settle("lost");
          },
          () => settle("lost"),
        )
        .then((fn) => {
          detach = fn;
          if (settled) fn();
        }, () => settle("failed"));
    });
  }

  async #viaSse(messageId, getAfter, onEvent, signal) {
    let announced = false;
    const outcome = await followSse(
      { messageId, after: getAfter() },
      (event, transport) => {
        if (!announced) {
          announced = true;
          this.onTransport("sse");
        }
        return onEvent(event, transport);
      },
      signal,
    );
    return outcome;
  }
}
