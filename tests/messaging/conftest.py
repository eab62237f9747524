"""Fixtures for the messaging tests: a real SMTP server on loopback and a job context on the test app."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from base.clock import FrozenClock
from plugin.context import JobContext
from sandbox.smtp import SmtpSandbox

# Tuesday 2026-03-03 09:30 UTC = 09:30 in London: inside the default 09:00-11:00 window.
IN_WINDOW = datetime(2026, 3, 3, 9, 30, tzinfo=UTC)


@pytest.fixture
def smtp() -> Iterator[SmtpSandbox]:
    """Run the SMTP sandbox for one test."""
    with SmtpSandbox() as server:
        yield server


@pytest.fixture
def ctx(app, smtp: SmtpSandbox, clock: FrozenClock) -> JobContext:
    """Return a job context on the test app's database that sends to the SMTP sandbox."""
    clock.set(IN_WINDOW)
    return JobContext.from_app(app, sleep=lambda _s: None,
                               extras={"smtp_url": f"smtp://127.0.0.1:{smtp.port}",
                                       "base_url": "https://aftercare.test"})
