"""What every job function receives: configuration, database, credential vault, clock and sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from base.clock import Clock, SystemClock
from plugin.config import Config
from plugin.crypto import Vault
from plugin.db import Database
from plugin.ops_counters import ApiMeter


@dataclass
class JobContext:
    """The dependencies of a job run; tests build one with a FrozenClock and a no-op sleep."""

    config: Config
    database: Database
    vault: Vault
    clock: Clock = field(default_factory=SystemClock)
    sleep: Callable[[float], None] = time.sleep
    # Overrides for tests and the demo (e.g. sandbox URLs); production leaves it empty.
    extras: dict[str, Any] = field(default_factory=dict)
    # The marketplace clients of this run; the job runner gives each run its own and stores what they did.
    meter: ApiMeter = field(default_factory=ApiMeter)

    @classmethod
    def from_config(cls, config: Config, clock: Clock | None = None, **kwargs: Any) -> JobContext:
        """Build a context with its own Database from a Config."""
        return cls(config=config, database=Database(config.database_url), vault=Vault(config.secrets.encryption_key),
                   clock=clock or SystemClock(), **kwargs)

    @classmethod
    def from_app(cls, app: Any, **kwargs: Any) -> JobContext:
        """Build a context that shares a Flask app's database, vault and clock."""
        return cls(config=app.config["AFTERCARE"], database=app.extensions["aftercare.db"],
                   vault=app.extensions["aftercare.vault"], clock=app.extensions["aftercare.clock"], **kwargs)
