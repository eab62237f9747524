"""Fixtures for the service-journey tests: a real SMTP server on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.smtp import SmtpSandbox


@pytest.fixture
def smtp() -> Iterator[SmtpSandbox]:
    """Run the SMTP sandbox for one test."""
    with SmtpSandbox() as server:
        yield server


@pytest.fixture
def ctx(database, clock, tmp_path):
    """Return a JobContext on the test database; every committed row is wiped before and after."""
    from tests.conftest import wipe
    from tests.jobs.conftest import make_ctx

    wipe(database.engine)
    yield make_ctx(database, clock, tmp_path)
    wipe(database.engine)
