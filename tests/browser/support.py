"""What the browser tests share: the waiting ceiling, the Chromium command line and screenshots."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page

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
