// Page chrome: the burger menu under 768 px, the polite live region, the transport
// indicator.

import { initAccountMenu } from "./account-menu.js";
import { hydrateIcons } from "./util.js";

export function initLayout() {
  hydrateIcons(document);
  initAccountMenu(document.querySelector("[data-account-menu]"));
  const burger = document.querySelector("[data-testid=burger]");
  const sidebar = document.getElementById("sidebar");
  const backdrop = document.querySelector("[data-backdrop]");
  const closeButton = document.querySelector("[data-close-sidebar]");
  const setOpen = (open) => {
    document.body.classList.toggle("sidebar-open", open);
    burger?.setAttribute("aria-expanded", String(open));
    backdrop.hidden = !open;
    if (open) sidebar.querySelector("[data-testid=new-chat]")?.focus();
    else if (sidebar.contains(document.activeElement)) burger?.focus();
  };
  burger?.addEventListener("click", () => setOpen(!document.body.classList.contains("sidebar-open")));
  backdrop?.addEventListener("click", () => setOpen(false));
  closeButton?.addEventListener("click", () => setOpen(false));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && document.body.classList.contains("sidebar-open")) setOpen(false);
  });
  matchMedia("(min-width: 768px)").addEventListener("change", (e) => e.matches && setOpen(false));
}

/** Say something to screen readers, politely. */
export function announce(text) {
  const live = document.getElementById("live-region");
  if (!live) return;
  live.textContent = "";
  setTimeout(() => (live.textContent = text), 50);
}

const TRANSPORT_LABEL = { websocket: "WebSocket", sse: "SSE", rest: "REST" };

export function showTransport(mode) {
  const node = document.querySelector("[data-testid=transport-indicator]");
  if (!node) return;
  node.hidden = false;
  node.dataset.transport = mode;
  node.querySelector(".transport-name").textContent = TRANSPORT_LABEL[mode] || mode;
  node.title =
    mode === "websocket"
      ? "Live over WebSocket"
      : mode === "sse"
        ? "The WebSocket could not connect: streaming over Server-Sent Events"
        : "Streaming is unavailable: answers arrive over plain HTTP";
}
