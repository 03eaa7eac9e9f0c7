// The progress of Research and Agents answers: research steps (a live list with
// labels and the sources each step found) and agent steps (one collapsible element per
// tool call: its name, arguments and result). Fed by the extension events
// `research_step`, `tool_call`, `tool_result` (live or replayed) and by the stored
// `steps` of a message; applying the same record twice changes nothing.

import { el } from "./util.js";

const STATUS_TEXT = { running: "…", done: "", stopped: "stopped" };

function brief(args) {
  if (!args || typeof args !== "object") return "";
  const first = Object.values(args).find((v) => typeof v === "string" || typeof v === "number");
  if (first === undefined) return "";
  const text = String(first);
  return text.length > 80 ? `${text.slice(0, 79)}…` : text;
}

function pretty(args) {
  try {
    return JSON.stringify(args ?? {}, null, 2);
  } catch {
    return String(args);
  }
}

export class StepsView {
  /** `anchor(n)`: the id of source card n (for the sources a research step found). */
  constructor({ anchor }) {
    this.anchor = anchor;
    this.research = new Map(); // step -> record
    this.calls = new Map(); // call_id -> {call, result}
    this.researchNodes = new Map(); // step -> <li>
    this.callNodes = new Map(); // call_id -> <details>
    this.streaming = false;

    this.researchSummary = el("summary", { class: "steps-summary" });
    this.researchList = el("ol", { class: "research-steps" });
    this.researchBox = el(
      "details",
      { class: "steps research", dataset: { testid: "research-progress" }, hidden: true },
      this.researchSummary,
      this.researchList,
    );
    this.agentTitle = el("div", { class: "steps-title agent-title" });
    this.agentList = el("div", { class: "agent-steps" });
    this.agentBox = el(
      "section",
      { class: "steps agents", dataset: { testid: "agent-steps" }, "aria-label": "Tool calls", hidden: true },
      this.agentTitle,
      this.agentList,
    );
    this.root = el("div", { class: "msg-steps" }, this.researchBox, this.agentBox);
  }

  /** Everything applied so far, as stored records (for the resume memory). */
  records() {
    const out = [...this.research.values()];
    for (const { call, result } of this.calls.values()) {
      if (call) out.push(call);
      if (result) out.push(result);
    }
    return out;
  }

  setStreaming(streaming) {
    this.streaming = streaming;
    if (streaming) this.researchBox.open = true;
    else {
      // A finished answer keeps its steps, folded away.
      for (const [step, record] of this.research) {
        if (record.status === "running") this.apply({ ...record, status: "stopped", step });
      }
      for (const { call, result } of this.calls.values()) {
        if (call && !result) this.#renderCall(call.call_id, "stopped");
      }
      this.researchBox.open = false;
    }
    this.#summarise();
  }

  /** Apply one event or stored record; returns true when it was a step. */
  apply(record) {
    switch (record?.type) {
      case "research_step":
        this.research.set(record.step, record);
        this.#renderResearch(record);
        this.#summarise();
        return true;
      case "tool_call":
        this.calls.set(record.call_id, { ...(this.calls.get(record.call_id) || {}), call: record });
        this.#renderCall(record.call_id);
        this.#summarise();
        return true;
      case "tool_result":
        this.calls.set(record.call_id, { ...(this.calls.get(record.call_id) || {}), result: record });
        this.#renderCall(record.call_id);
        this.#summarise();
        return true;
      default:
        return false;
    }
  }

  applyAll(records) {
    for (const record of records || []) this.apply(record);
  }

  #renderResearch(record) {
    let node = this.researchNodes.get(record.step);
    if (!node) {
      node = el("li", { class: "research-step", dataset: { testid: "research-step", step: String(record.step) } });
      this.researchNodes.set(record.step, node);
      const after = [...this.researchNodes.entries()].filter(([s]) => s > record.step).sort((a, b) => a[0] - b[0])[0];
      if (after) this.researchList.insertBefore(node, after[1]);
      else this.researchList.append(node);
    }
    node.dataset.status = record.status || "done";
    node.dataset.phase = record.phase || "search";
    const found = (record.citations || []).map((c) =>
      el("a", { class: "step-source", href: `#${this.anchor(c.index)}`, title: c.title || "", "aria-label": `Source ${c.index}` }, String(c.index)),
    );
    const parts = [
      el("span", { class: "step-mark", "aria-hidden": "true" }),
      el("span", { class: "step-label", text: record.label || "" }),
      STATUS_TEXT[record.status] ? el("span", { class: "step-state", text: STATUS_TEXT[record.status] }) : null,
      found.length ? el("span", { class: "step-sources" }, found) : null,
    ];
    node.replaceChildren(...parts.filter(Boolean));
    this.researchBox.hidden = false;
  }

  #renderCall(callId, forced) {
    const { call, result } = this.calls.get(callId) || {};
    let node = this.callNodes.get(callId);
    if (!node) {
      node = el("details", { class: "agent-step", dataset: { testid: "agent-step", callId } });
      this.callNodes.set(callId, node);
      this.agentList.append(node);
    }
    const name = call?.name || result?.name || "tool";
    const status = forced || (result ? (result.ok ? "ok" : "error") : "running");
    node.dataset.tool = name;
    node.dataset.status = status;
    node.dataset.step = String(call?.step ?? result?.step ?? "");
    const stateText = { running: "running…", ok: "done", error: "error", stopped: "stopped" }[status];
    const summary = el(
      "summary",
      {},
      el("span", { class: "tool-step", text: `${call?.step ?? result?.step ?? ""}` }),
      el("span", { class: "tool-name", text: name }),
      el("span", { class: "tool-brief", text: brief(call?.arguments) }),
      el("span", { class: `tool-state tool-${status}`, text: stateText }),
    );
    const body = el(
      "div",
      { class: "tool-body" },
      el("div", { class: "tool-label", text: "Arguments" }),
      el("pre", { class: "tool-pre", dataset: { testid: "agent-step-arguments" }, text: pretty(call?.arguments) }),
      result
        ? el("div", { class: "tool-label", text: result.ok ? "Result" : "Error" })
        : null,
      result
        ? el("pre", { class: "tool-pre", dataset: { testid: "agent-step-result" }, text: `${result.content || ""}${result.truncated ? "\n…" : ""}` })
        : null,
    );
    const open = node.open;
    node.replaceChildren(summary, body);
    node.open = open;
    this.agentBox.hidden = false;
  }

  #summarise() {
    const steps = [...this.research.values()];
    if (steps.length) {
      const total = Math.max(...steps.map((s) => s.total || 0), steps.length);
      const current = [...steps].reverse().find((s) => s.status === "running");
      const sources = new Set(steps.flatMap((s) => (s.citations || []).map((c) => c.index)));
      const done = steps.filter((s) => s.status === "done").length;
      const text = this.streaming
        ? `Researching · step ${current ? current.step : done} of ${total}${current ? `: ${current.label}` : ""}`
        : `Research · ${steps.length} steps · ${sources.size} source${sources.size === 1 ? "" : "s"}`;
      this.researchSummary.textContent = text;
    }
    if (this.calls.size) {
      const running = [...this.calls.values()].some((c) => c.call && !c.result);
      this.agentTitle.textContent = `${running && this.streaming ? "Using tools" : "Tools used"} · ${this.calls.size} step${this.calls.size === 1 ? "" : "s"}`;
    }
  }
}
