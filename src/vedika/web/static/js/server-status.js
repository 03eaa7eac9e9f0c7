// The operator's view of what this server is connected to (`/api/config` `status`,
// sent in development only): database, models and where they come from, web search,
// and the next step when something is missing. Text only: every value is set with
// textContent.

import { getConfig } from "./config.js";

function row(list, term, value) {
  const dt = document.createElement("dt");
  dt.textContent = term;
  const dd = document.createElement("dd");
  dd.textContent = value;
  list.append(dt, dd);
}

export async function showServerStatus(root = document.querySelector("[data-testid=server-status]")) {
  if (!root) return;
  const status = (await getConfig())?.status;
  if (!status) return;
  const list = root.querySelector("dl");
  list.replaceChildren();
  row(list, "Database", status.database);
  const models = (status.models || []).map((s) => `${s.models.join(", ")} (from ${s.endpoint}: ${s.where})`);
  row(list, "Models", models.length ? models.join("; ") : "none connected: the offline model answers");
  row(list, "Web search", status.search || "off (no web search provider)");
  const next = root.querySelector(".server-status-next");
  next.replaceChildren(
    ...(status.next_steps || []).map((step) => {
      const item = document.createElement("li");
      item.textContent = step;
      return item;
    }),
  );
  const steps = (status.next_steps || []).length;
  root.querySelector(".server-status-count").textContent = steps
    ? `: ${steps} thing${steps === 1 ? "" : "s"} to connect`
    : ": all connected";
  root.hidden = false;
}
