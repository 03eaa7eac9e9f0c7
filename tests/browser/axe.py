"""axe-core in the browser tests: ``assert_no_violations(page)``.

axe-core is pinned in ``tests/support/axe/package.json`` (installed by
``scripts/ensure-services.sh`` with ``npm ci``). The pages run under their strict
Content-Security-Policy, which blocks ``add_script_tag``; the script's text is
evaluated through the DevTools protocol instead (``page.evaluate``), which the CSP
does not cover. It runs with the WCAG 2.0/2.1 A and AA rules and best practice.

Any test can call it on the page it has in hand::

    from tests.browser.axe import assert_no_violations
    assert_no_violations(page)                      # the whole document
    assert_no_violations(page, "[role=dialog]")     # only the part a test opened

Without axe-core installed the check fails with the reason (never a silent pass).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

AXE_JS = (
    Path(__file__).resolve().parents[1]
    / "support"
    / "axe"
    / "node_modules"
    / "axe-core"
    / "axe.min.js"
)
TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice")


@cache
def _source() -> str:
    if not AXE_JS.exists():
        # A failure, not a skip: `make test` installs it, and a check that did not run
        # must not look like one that passed.
        pytest.fail(f"axe-core is not installed ({AXE_JS}); run scripts/ensure-services.sh")
    return AXE_JS.read_text(encoding="utf-8")


def _inject(page: Page) -> None:
    if page.evaluate("() => typeof window.axe === 'object'"):
        return
    # Evaluated as a function body: axe's UMD wrapper sets window.axe.
    page.evaluate("(source) => { (0, eval)(source); }", _source())
    if not page.evaluate("() => typeof window.axe === 'object'"):  # pragma: no cover
        raise AssertionError("axe-core did not load in the page")


def run_axe(
    page: Page, context: str | None = None, disable: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The full axe results (violations, passes, incomplete) for the page or a part of it."""
    _inject(page)
    options: dict[str, Any] = {
        "runOnly": {"type": "tag", "values": list(TAGS)},
        "resultTypes": ["violations"],
    }
    if disable:
        options["rules"] = {rule: {"enabled": False} for rule in disable}
    return page.evaluate(
        "([context, options]) => window.axe.run(context ?? document, options)"
        ".then(r => ({violations: r.violations, passes: r.passes.length, url: r.url}))",
        [context, options],
    )


def describe(violations: list[dict[str, Any]]) -> str:
    """One readable block per violated rule: id, impact, help, and every node's target."""
    lines: list[str] = []
    for violation in violations:
        lines.append(
            f"- {violation['id']} ({violation.get('impact') or 'n/a'}): {violation['help']}"
            f"  [{violation.get('helpUrl', '')}]"
        )
        for node in violation.get("nodes", []):
            target = " ".join(str(t) for t in node.get("target", []))
            summary = (node.get("failureSummary") or "").replace("\n", " ")
            lines.append(f"    at {target}: {summary[:300]}")
    return "\n".join(lines)


def assert_no_violations(
    page: Page, context: str | None = None, *, state: str = "", disable: tuple[str, ...] = ()
) -> None:
    """Fail with a readable list when axe-core finds any violation.

    ``context``: a CSS selector to check only part of the page (default: the whole
    document). ``state``: a label for the message (what the page was showing).
    ``disable``: rule ids to skip, each with a reason at the call site.
    """
    results = run_axe(page, context, disable)
    violations = results["violations"]
    if violations:
        where = f"{state} " if state else ""
        raise AssertionError(
            f"axe-core found {len(violations)} violated rule(s) on {where}{results['url']}:\n"
            + describe(violations)
        )
