"""Plan and dispatch Amazon solicitations in their own process and SIGKILL it right after Amazon accepted one.

Used by tests/test_amazon_reviews.py: ``python -m tests.amazon_kill_worker <json args>``. The kill lands
after the API call and before the dispatcher commits the outcome, the worst moment for exactly-once sending.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from datetime import datetime

from base.clock import FrozenClock
from jobs.dispatch import dispatch_due
from plugin.config import load_config
from plugin.context import JobContext
from plugin.crypto import Vault
from plugin.db import Database
from plugin.flows import amazon_review_request


def main(raw: str) -> None:
    """Plan, then dispatch once with the kill hook installed."""
    args = json.loads(raw)
    config = load_config(args["settings"], environ={})
    clock = FrozenClock(datetime.fromisoformat(args["now"]))
    database = Database(config.database_url)
    ctx = JobContext(config=config, database=database, vault=Vault(config.secrets.encryption_key), clock=clock,
                     sleep=lambda seconds: clock.advance(seconds=seconds),
                     extras={"after_solicitation_sent": lambda _order: os.kill(os.getpid(), signal.SIGKILL)})
    amazon_review_request.run(ctx, int(args["store_id"]))
    dispatch_due(ctx, worker_id="doomed-dispatcher")


if __name__ == "__main__":
    main(sys.argv[1])
