"""Checks that HTML rendered from untrusted text can run nothing: parsed as a browser's
tokenizer sees it (html.parser), no script-capable tag, no event handler, no link to a
script or data URL."""

from __future__ import annotations

from html.parser import HTMLParser

SCRIPT_TAGS = {
    "script", "iframe", "object", "embed", "svg", "math", "style", "link", "meta", "base",
    "form", "input", "button", "textarea", "select", "img", "video", "audio", "source",
    "frame", "frameset", "template", "noscript", "details", "marquee", "isindex", "body",
}  # fmt: skip
URL_ATTRS = {"href", "src", "action", "formaction", "xlink:href", "data", "background"}


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> tuple[list[tuple[str, dict[str, str]]], str]:
    parser = _Collect()
    parser.feed(html)
    parser.close()
    return parser.tags, " ".join(" ".join(parser.text).split())


def unsafe_parts(html: str, *, allowed: frozenset[str] = frozenset()) -> list[str]:
    """Whatever in `html` could run script; empty when safe. `allowed`: tags the page's
    own frame may use (e.g. its <meta> and <link rel=stylesheet> in <head>)."""
    found = []
    tags, _ = parse(html)
    for tag, attrs in tags:
        if tag in SCRIPT_TAGS and tag not in allowed:
            found.append(f"<{tag}>")
        for name, value in attrs.items():
            if name.startswith("on"):
                found.append(f"<{tag} {name}>")
            if name in URL_ATTRS:
                squashed = "".join(value.split()).lower()
                if squashed.startswith(("javascript:", "data:", "vbscript:")):
                    found.append(f"<{tag} {name}={value!r}>")
            if name == "style":
                found.append(f"<{tag} style>")
    return found
