"""axe-core (npm, node_modules/) run in a page of the browser tests: the accessibility
rules a screen reader's user depends on, as Deque's engine checks them."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page

from tests.helpers import ROOT

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")


def violations(page: Page) -> list[dict[str, Any]]:
    """What axe-core finds wrong on ``page`` (WCAG 2.x A and AA, and best practices). The
    page's context must bypass its Content-Security-Policy, which forbids injected scripts."""
    assert AXE.exists(), f"{AXE} is missing: bash scripts/install --test installs it"
    page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    return found


def blocking(page: Page) -> list[str]:
    """The serious and critical violations of ``page``, one line each with where."""
    return [f"{v['impact']}: {v['id']} ({v['help']}) at "
            + ", ".join(" ".join(node["target"]) for node in v["nodes"][:3])
            for v in violations(page) if v["impact"] in BLOCKING]
