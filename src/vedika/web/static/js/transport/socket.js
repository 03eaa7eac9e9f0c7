// One WebSocket per page (`/ws`), shared by every answer being followed.
// Events are routed to subscribers by message_id. The socket counts as open only
// once the server's `connection_established` greeting arrives: a proxy that accepts
// the upgrade but never talks (or a blocked socket) is treated as no socket at all.

import { getSession } from "../session.js";
import { websocketUrl } from "../config.js";

const GREETING_TIMEOUT_MS = 3000;
const PING_EVERY_MS = 25000;

export class SocketHub {
  constructor() {
    this.ws = null;
    this.ready = null; // Promise of an open socket
    this.subscribers = new Map(); // message_id -> {onEvent, onLost}
    this.latest = null; // the last subscriber, for errors without a message_id
    this.pingTimer = 0;
  }

  /** Resolve when the socket is open and greeted; reject when it cannot be. */
  open() {
    if (this.ready) return this.ready;
    this.ready = this.#connect().catch((error) => {
      this.ready = null;
      throw error;
    });
    return this.ready;
  }

  async #connect() {
    const url = await websocketUrl();
    return new Promise((resolve, reject) => {
      let greeted = false;
      let ws;
      try {
        ws = new WebSocket(url);
      } catch (error) {
        reject(error);
        return;
      }
      const timer = setTimeout(() => {
        if (!greeted) {
          ws.close();
          reject(new Error("no greeting from the WebSocket"));
        }
      }, GREETING_TIMEOUT_MS);
      ws.addEventListener("message", (message) => {
        let data;
        try {
          data = JSON.parse(message.data);
        } catch {
          return;
        }
        if (!greeted && data.type === "connection_established") {
          greeted = true;
          clearTimeout(timer);
          this.ws = ws;
          this.pingTimer = setInterval(() => this.#send({ routeKey: "ping" }), PING_EVERY_MS);
          resolve(this);
          return;
        }
        this.#route(data);
      });
      ws.addEventListener("close", () => {
        clearTimeout(timer);
        if (!greeted) reject(new Error("the WebSocket closed before its greeting"));
        else this.#lost(ws);
      });
      ws.addEventListener("error", () => {
        /* a close event always follows */
      });
    });
  }

  #send(payload) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(payload));
      return true;
    }
    return false;
  }

  #route(data) {
    if (data.type === "pong" || data.type === "connection_established") return;
    const target = (data.message_id && this.subscribers.get(data.message_id)) || null;
    if (target) target.onEvent(data);
    else if (!data.message_id && this.latest && data.type === "stream_error") this.latest.onEvent(data);
  }

  #lost(ws) {
    if (this.ws !== ws) return;
    clearInterval(this.pingTimer);
    this.ws = null;
    this.ready = null;
    const subs = [...this.subscribers.values()];
    this.subscribers.clear();
    this.latest = null;
    for (const sub of subs) sub.onLost();
  }

  /**
   * Attach to a generation: replay after `after`, then the live tail.
   * Returns a function that detaches.
   */
  async subscribe({ conversationId, messageId, after }, onEvent, onLost) {
    const session = await getSession();
    const sub = { onEvent, onLost };
    this.subscribers.set(messageId, sub);
    this.latest = sub;
    const sent = this.#send({
      routeKey: "stream_chat",
      conversation_id: conversationId,
      message_id: messageId,
      resume_from: after,
      session_id: session.session_id,
      device_id: session.device_id,
    });
    if (!sent) {
      this.subscribers.delete(messageId);
      queueMicrotask(onLost);
    }
    return () => {
      if (this.subscribers.get(messageId) === sub) this.subscribers.delete(messageId);
      if (this.latest === sub) this.latest = null;
    };
  }
}
