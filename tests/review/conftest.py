"""Fixtures for the review tests: a real SMTP server on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.smtp import SmtpSandbox


@pytest.fixture
def smtp() -> Iterator[SmtpSandbox]:
    """Run the SMTP sandbox for one test."""
    with SmtpSandbox() as server:
        yield server
