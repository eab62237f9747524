"""Run the Amazon solicitation job in its own process and SIGKILL it right after Amazon accepted a send.

Used by tests/test_amazon_reviews.py: ``python -m tests.amazon_kill_worker <json args>``. The kill lands
after the API call and before the outcome is committed, the worst moment for exactly-once sending.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from datetime import datetime

from base.clock import FrozenClock
from jobs import amazon_reviews
from plugin.config import load_config
from plugin.context import JobContext
from plugin.crypto import Vault
from plugin.db import Database


def main(raw: str) -> None:
    """Run the job once with the kill hook installed."""
    args = json.loads(raw)
    config = load_config(args["settings"], environ={})
    clock = FrozenClock(datetime.fromisoformat(args["now"]))
    database = Database(config.database_url)
    ctx = JobContext(config=config, database=database, vault=Vault(config.secrets.encryption_key), clock=clock,
                     sleep=lambda seconds: clock.advance(seconds=seconds),
                     extras={"after_solicitation_sent": lambda _order: os.kill(os.getpid(), signal.SIGKILL)})
    amazon_reviews.run(ctx, int(args["store_id"]))


if __name__ == "__main__":
    main(sys.argv[1])
