// The coins badge in the header: what is left today, in words, kept fresh from every
// answer; its title says when the coins come back. ("0/20" read as "none left" when it
// meant "none used".)

import { api } from "./api.js";

function badge() {
  return document.querySelector("[data-testid=coins-badge]");
}

/** The next midnight UTC, when every device's coins come back. */
function nextReset(now = new Date()) {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1));
}

function inWords(ms) {
  const minutes = Math.max(1, Math.round(ms / 60000));
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  const rest = minutes % 60;
  return rest ? `${hours} h ${rest} min` : `${hours} h`;
}

export function coinsText(left) {
  if (left <= 0) return "No coins left";
  return left === 1 ? "1 coin left" : `${left} coins left`;
}

function show(used, total) {
  const node = badge();
  if (!node || !Number.isFinite(used) || !Number.isFinite(total)) return;
  const left = Math.max(total - used, 0);
  const reset = nextReset();
  const local = reset.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  node.querySelector(".coins-value").textContent = coinsText(left);
  node.title =
    `${left} of today's ${total} Vedika coins left (${used} used). ` +
    `They come back at midnight UTC (${local} your time, in ${inWords(reset - new Date())}).`;
  node.classList.toggle("low", total > 0 && left <= Math.max(1, Math.floor(total * 0.1)));
  node.dataset.used = String(used);
  node.dataset.total = String(total);
  node.dataset.left = String(left);
}

export async function refreshCoins() {
  try {
    const b = await api.balance();
    const total = b.daily_vedika_coins ?? b.daily_credits;
    const remaining = b.vedika_coins_remaining ?? b.credits_remaining;
    const used = b.credits_used ?? (Number.isFinite(total - remaining) ? total - remaining : NaN);
    show(Number(used), Number(total));
  } catch {
    /* the badge keeps its last value */
  }
}

/** Update from any payload that carries credit figures (events or REST answers). */
export function updateCoinsFrom(payload) {
  if (!payload) return;
  const credits = payload.credits;
  if (credits && Number.isFinite(credits.daily_total)) {
    const used = credits.used_today ?? credits.daily_total - credits.remaining;
    show(Number(used), Number(credits.daily_total));
    return;
  }
  if (Number.isFinite(payload.daily_credits) && Number.isFinite(payload.vedika_coins_remaining)) {
    show(payload.daily_credits - payload.vedika_coins_remaining, payload.daily_credits);
    return;
  }
  if (Number.isFinite(payload.vedika_coins_remaining)) {
    const total = Number(badge()?.dataset.total);
    if (Number.isFinite(total)) show(total - payload.vedika_coins_remaining, total);
    else refreshCoins();
  }
}
