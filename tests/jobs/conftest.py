"""Fixtures for the job tests: a JobContext on the test database with a frozen clock; rows wiped after."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from base.clock import FrozenClock
from plugin.config import load_config
from plugin.context import JobContext
from plugin.crypto import Vault
from plugin.db import Database
from tests.conftest import TEST_ENCRYPTION_KEY, test_settings, wipe


def make_ctx(database: Database, clock: FrozenClock, tmp_path: Path, **extra: object) -> JobContext:
    """Build a JobContext for tests (no environment needed)."""
    config = load_config(test_settings(database.url, tmp_path / "instance", **extra), environ={})
    return JobContext(config=config, database=database, vault=Vault(TEST_ENCRYPTION_KEY), clock=clock,
                      sleep=lambda _s: None)


@pytest.fixture
def ctx(database: Database, clock: FrozenClock, tmp_path: Path) -> Iterator[JobContext]:
    """Return a JobContext; every committed row is wiped after the test."""
    wipe(database.engine)
    yield make_ctx(database, clock, tmp_path)
    wipe(database.engine)
