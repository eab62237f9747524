"""A dispatcher process for the crash test: builds a JobContext from the environment and loops ``dispatch_due``
until no message is left scheduled or sending. Reports one line per batch (stdout, or a pipe when started by
``run_child`` from a preloaded forkserver) so the test can kill it mid-run.

Environment: the usual AFTERCARE_* variables, plus AFTERCARE_TEST_CLOCK_OFFSET (seconds added to the wall
clock, so every worker shares one timeline that starts inside the send window) and AFTERCARE_TEST_BATCH.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from jobs.dispatch import dispatch_due
from plugin.config import load_config
from plugin.context import JobContext
from plugin.models import Message


class OffsetClock:
    """The wall clock shifted by a fixed offset shared by every worker of a test."""

    def __init__(self, offset: timedelta):
        self.offset = offset

    def now(self) -> datetime:
        """Return the shifted current time."""
        return datetime.now(UTC) + self.offset


def main(progress: Callable[[str], Any] = print) -> int:
    """Dispatch until the outbox is drained, reporting each batch through ``progress``."""
    config = load_config()
    clock = OffsetClock(timedelta(seconds=float(os.environ.get("AFTERCARE_TEST_CLOCK_OFFSET", "0"))))
    ctx = JobContext.from_config(config, clock=clock)
    batch = int(os.environ.get("AFTERCARE_TEST_BATCH", "5"))
    worker = f"worker-{os.getpid()}"
    progress("ready")
    while True:
        counts = dispatch_due(ctx, limit=batch, worker_id=worker)
        progress(f"batch {counts}")
        with ctx.database.session() as session:
            left = session.scalar(select(func.count(Message.id)).where(Message.status.in_(("scheduled", "sending"))))
        if not left:
            progress("done")
            return 0
        if not counts.get("sent"):
            time.sleep(0.05)  # only stale claims are left: wait for their claim timeout


def warm() -> None:
    """Load what the first dispatch would load lazily (channels, a holiday calendar, locale data), so a
    forkserver that imports this module hands every child a warm interpreter."""
    from plugin.messaging import channels, sendtime, templates

    list(channels.registered())
    sendtime.is_holiday("GB", datetime(2026, 3, 3).date())
    templates.preview("review_request", "main", "en")


warm()


def run_child(environ: Mapping[str, str], connection: Any) -> None:
    """Entry point of a multiprocessing child: take the environment, report through a pipe."""
    os.environ.update(environ)
    main(progress=connection.send)


if __name__ == "__main__":
    sys.exit(main())
