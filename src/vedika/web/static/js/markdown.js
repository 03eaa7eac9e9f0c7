// Markdown -> sanitised DOM. Model output and user text only ever reach the page
// through here (or as textContent). Raw HTML in the markdown is shown as text, the
// result is sanitised by DOMPurify with an allow-list, links open in a new tab with
// rel=noopener, only http(s) and mailto URLs survive, code blocks get a copy button
// and `[n]` markers become links to the numbered source cards.

import { Marked } from "../vendor/marked/marked.esm.js";
import DOMPurify from "../vendor/dompurify/purify.es.mjs";

const escapeHtml = (s) =>
  String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

const marked = new Marked({
  gfm: true,
  breaks: false,
  renderer: {
    // Raw HTML written by a model is displayed, not interpreted.
    html: ({ text }) => escapeHtml(text),
  },
});

const PURIFY_CONFIG = {
  ALLOWED_TAGS: [
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "b", "em", "i", "del", "s",
    "code", "pre", "blockquote", "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th",
    "td", "sup", "sub", "input", "span",
  ],
  ALLOWED_ATTR: ["href", "title", "class", "start", "align", "type", "checked", "disabled"],
  ALLOWED_URI_REGEXP: /^(?:https?:|mailto:)/i,
  ALLOW_DATA_ATTR: false,
  RETURN_DOM_FRAGMENT: true,
};

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.nodeName === "A") {
    if (node.hasAttribute("href")) {
      node.setAttribute("target", "_blank");
      node.setAttribute("rel", "noopener noreferrer nofollow");
    }
  } else if (node.nodeName === "INPUT") {
    // Only the disabled checkboxes of task lists.
    if (node.getAttribute("type") !== "checkbox") node.remove();
    else node.setAttribute("disabled", "");
  }
  if (node.hasAttribute?.("class") && !/^language-[\w+#.-]{1,40}$/.test(node.getAttribute("class"))) {
    node.removeAttribute("class");
  }
});

/** Sanitise an HTML string (for anything else that must become DOM). */
export function sanitize(html) {
  return DOMPurify.sanitize(html, PURIFY_CONFIG);
}

/**
 * Render `text` as a sanitised DocumentFragment.
 * `citations`: the known sources (for `[n]` links); `anchor(n)`: id of source card n.
 */
export function renderMarkdown(text, { citations = null, anchor = null } = {}) {
  const html = marked.parse(text || "", { async: false });
  const fragment = sanitize(html);
  enhanceCode(fragment);
  wrapTables(fragment);
  if (citations && citations.length && anchor) linkCitations(fragment, citations, anchor);
  return fragment;
}

function enhanceCode(root) {
  for (const pre of root.querySelectorAll("pre")) {
    const code = pre.querySelector("code");
    const lang = (code?.className.match(/language-([\w+#.-]+)/) || [])[1] || "";
    const box = document.createElement("div");
    box.className = "codeblock";
    const head = document.createElement("div");
    head.className = "codeblock-head";
    const label = document.createElement("span");
    label.className = "codeblock-lang";
    label.textContent = lang || "code";
    const button = document.createElement("button");
    button.type = "button";
    button.className = "btn-ghost btn-xs";
    button.dataset.action = "copy-code";
    button.setAttribute("aria-label", `Copy ${lang || "code"}`);
    const buttonLabel = document.createElement("span");
    buttonLabel.className = "label";
    buttonLabel.textContent = "Copy";
    button.append(buttonLabel);
    head.append(label, button);
    pre.replaceWith(box);
    box.append(head, pre);
  }
}

function wrapTables(root) {
  for (const table of root.querySelectorAll("table")) {
    const wrap = document.createElement("div");
    wrap.className = "table-wrap";
    table.replaceWith(wrap);
    wrap.append(table);
  }
}

const MARKER = /\[(\d{1,3})\]/g;
const HAS_MARKER = /\[\d{1,3}\]/;

function linkCitations(root, citations, anchor) {
  const known = new Set(citations.map((c, i) => Number(c.index ?? i + 1)));
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT, {
    acceptNode: (node) =>
      node.parentElement?.closest("code, pre, a") || !HAS_MARKER.test(node.data)
        ? NodeFilter.FILTER_REJECT
        : NodeFilter.FILTER_ACCEPT,
  });
  const targets = [];
  while (walker.nextNode()) targets.push(walker.currentNode);
  for (const node of targets) {
    const parts = document.createDocumentFragment();
    let last = 0;
    for (const match of node.data.matchAll(MARKER)) {
      const n = Number(match[1]);
      if (!known.has(n)) continue;
      parts.append(node.data.slice(last, match.index));
      const link = document.createElement("a");
      link.className = "citation";
      link.href = `#${anchor(n)}`;
      link.dataset.testid = "citation";
      link.dataset.index = String(n);
      link.textContent = String(n);
      link.setAttribute("aria-label", `Source ${n}`);
      parts.append(link);
      last = match.index + match[0].length;
    }
    if (last === 0) continue;
    parts.append(node.data.slice(last));
    node.replaceWith(parts);
  }
}
