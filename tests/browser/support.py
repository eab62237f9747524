"""What the browser tests share: the waiting ceiling, the Chromium command line and screenshots."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from playwright.sync_api import Frame, Page

# The ceiling of every wait (Playwright actions, navigations, expect assertions, our HTTP calls), set here only:
# tests wait for conditions, and a loaded machine may take long to meet them.
WAIT_CEILING_SECONDS = 120
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


def shot(page: Page, name: str) -> None:
    """Save a full-page screenshot as a test artifact."""
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def axe_script() -> str:
    """Return axe-core's browser script, as installed by the test dependencies (PyPI ``axe-playwright-python``)."""
    return (resources.files("axe_playwright_python") / "axe.min.js").read_text(encoding="utf-8")


def serious_violations(target: Page | Frame) -> list[str]:
    """Run axe-core on a page or frame and return its serious and critical violations, one line each."""
    if not target.evaluate("() => !!window.axe"):
        target.evaluate(axe_script())
    result = target.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']} ({v['impact']}): {v['help']} — " + "; ".join(n["target"][0] if isinstance(n["target"][0], str)
                                                                      else str(n["target"]) for n in v["nodes"][:3])
            for v in result["violations"] if v["impact"] in ("serious", "critical")]
