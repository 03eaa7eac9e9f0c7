// Numbered source cards (title, site, snippet) for an answer's citations.

import { el, safeHttpUrl } from "./util.js";

export function sourceAnchor(messageId, n) {
  return `src-${messageId}-${n}`;
}

/** Fill `list` (an <ol>) with one card per citation; hides it when there are none. */
export function renderSources(list, messageId, citations) {
  list.replaceChildren();
  const items = Array.isArray(citations) ? citations : [];
  list.hidden = items.length === 0;
  items.forEach((citation, i) => {
    const n = Number(citation.index ?? i + 1);
    const url = safeHttpUrl(citation.url);
    const site = citation.site || (url ? url.hostname.replace(/^www\./, "") : citation.file_id ? "Attached file" : "");
    const title = citation.title || (url ? url.href : `Source ${n}`);
    const head = [el("span", { class: "source-num", text: String(n) }), el("span", { class: "source-title", text: title })];
    const card = url
      ? el("a", { class: "source-link", href: url.href, target: "_blank", rel: "noopener noreferrer nofollow" }, head)
      : el("div", { class: "source-link" }, head);
    list.append(
      el(
        "li",
        { class: "source-card", id: sourceAnchor(messageId, n), dataset: { testid: "source-card" } },
        card,
        site ? el("span", { class: "source-site", text: citation.page ? `${site} · p. ${citation.page}` : site }) : null,
        citation.snippet ? el("p", { class: "source-snippet", text: citation.snippet }) : null,
      ),
    );
  });
}
