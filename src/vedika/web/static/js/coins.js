// The coins badge in the header: used / daily total, kept fresh from every answer.

import { api } from "./api.js";

function badge() {
  return document.querySelector("[data-testid=coins-badge]");
}

function show(used, total) {
  const node = badge();
  if (!node || !Number.isFinite(used) || !Number.isFinite(total)) return;
  node.querySelector(".coins-value").textContent = `${used}/${total}`;
  node.title = `Vedika coins: ${used} used of ${total} today (${Math.max(total - used, 0)} left)`;
  node.classList.toggle("low", total > 0 && total - used <= Math.max(1, Math.floor(total * 0.1)));
  node.dataset.used = String(used);
  node.dataset.total = String(total);
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
