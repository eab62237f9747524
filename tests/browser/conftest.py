"""Headless Chromium for the browser tests, with the one waiting ceiling they all share.

Tests wait for conditions (Playwright's auto-waiting actions and ``expect``), never for fixed times. The
ceiling only bounds how long a condition may take to come true: on a loaded 2-core CI machine Chromium, the
app and the sandboxes share the cores, so it is generous; a slow machine makes the tests slower, not red.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.browser.support import ARGS, CHROMIUM, SHOTS, WAIT_CEILING_SECONDS


@pytest.fixture(scope="module")
def page() -> Iterator[Page]:
    """A Chromium page at a desktop size, waiting up to the shared ceiling."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    expect.set_options(timeout=WAIT_CEILING_SECONDS * 1000)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, timeout=WAIT_CEILING_SECONDS * 1000)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(WAIT_CEILING_SECONDS * 1000)
        context.set_default_navigation_timeout(WAIT_CEILING_SECONDS * 1000)
        tab = context.new_page()
        yield tab
        context.close()
        browser.close()

