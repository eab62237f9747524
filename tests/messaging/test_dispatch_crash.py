"""Crash test: dispatcher processes are killed with SIGKILL at random moments while sending 200 emails.

Afterwards every message arrived (counted by Message-ID at the SMTP server) and the duplicates are within the
documented bound (plugin/messaging/dispatch.py): at most one per kill, and only when the kill fell between
"server accepted DATA" and "``sent`` committed". Half the kills are aimed exactly there (the SMTP server kills
the dispatcher while it holds the message, before answering 250), so that edge is exercised every run; the
others land wherever the dispatcher happens to be after a random number of batches.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from plugin.models import Message
from sandbox.smtp import SmtpSandbox
from tests.conftest import TEST_ENCRYPTION_KEY, TEST_SECRET_KEY
from tests.messaging import dispatch_worker, seed
from tests.messaging.conftest import IN_WINDOW

MESSAGES = 200
KILLS = 30


class KillingSmtp(SmtpSandbox):
    """The SMTP sandbox, able to SIGKILL the current dispatcher right after storing its N-th message."""

    victim: int | None = None
    kill_at: int | None = None

    def keep(self, envelope, session) -> str:  # noqa: ANN001
        queue_id = super().keep(envelope, session)
        if self.kill_at is not None and len(self.messages) >= self.kill_at and self.victim:
            self.kill_at = None
            os.kill(self.victim, signal.SIGKILL)  # the client never sees 250: delivery unknown to it
        return queue_id


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing_and_duplicates_at_most_once_per_kill(app, clock) -> None:
    rng = random.Random(20260303)
    database = app.extensions["aftercare.db"]
    with database.session() as s:
        store = seed.store(s)
        for n in range(MESSAGES):
            seed.message(s, store, seed.customer(s, store, n), when=IN_WINDOW - timedelta(hours=1))

    server = KillingSmtp().start()
    env = {"AFTERCARE_DATABASE_URL": database.url, "AFTERCARE_SECRET_KEY": TEST_SECRET_KEY,
           "AFTERCARE_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY, "AFTERCARE_SMTP_URL": f"smtp://127.0.0.1:{server.port}",
           "AFTERCARE_MAIL__CLAIM_TIMEOUT_SECONDS": "0.25", "AFTERCARE_MAIL__MAX_ATTEMPTS": "10",
           "AFTERCARE_TEST_BATCH": "3",
           # Every worker shares one timeline starting at IN_WINDOW, inside the customers' send window.
           "AFTERCARE_TEST_CLOCK_OFFSET": str((IN_WINDOW - datetime.now(UTC)).total_seconds())}
    mp = multiprocessing.get_context("forkserver")
    mp.set_forkserver_preload(["tests.messaging.dispatch_worker"])

    def run_worker(kill_after_batches: int | None) -> str:
        receiver, sender = mp.Pipe(duplex=False)
        process = mp.Process(target=dispatch_worker.run_child, args=(env, sender), daemon=True)
        process.start()
        sender.close()
        server.victim = process.pid
        batches, last = 0, ""
        try:
            while True:
                try:
                    last = receiver.recv()
                except EOFError:
                    break  # killed (by the SMTP server) or finished
                if last == "done":
                    break
                if last.startswith("batch"):
                    batches += 1
                    if kill_after_batches is not None and batches >= kill_after_batches:
                        process.kill()
                        break
        finally:
            process.join(timeout=60)
            receiver.close()
        assert process.exitcode is not None, "a worker did not stop"
        return "done" if process.exitcode == 0 else "killed"

    data_kills = random_kills = 0
    try:
        for _ in range(KILLS):
            if rng.random() < 0.5:
                server.kill_at = len(server.messages) + rng.randint(1, 6)
                outcome = run_worker(None)
                data_kills += outcome == "killed"
            else:
                outcome = run_worker(rng.randint(1, 3))
                random_kills += outcome == "killed"
            if outcome == "done":
                break
        server.kill_at = None
        assert run_worker(None) == "done"
    finally:
        server.stop()

    kills = data_kills + random_kills
    received = Counter(m.message_id for m in server.messages)
    with database.session() as s:
        rows = list(s.scalars(select(Message)))
    assert kills == KILLS
    assert [r.status for r in rows] == ["sent"] * MESSAGES
    assert set(received) == {r.provider_id for r in rows}  # every message arrived, nothing unknown did
    duplicates = sum(received.values()) - MESSAGES
    # The documented bound: a kill inside the DATA window always costs one duplicate, any other kill none,
    # and no kill ever costs more than one.
    assert data_kills <= duplicates <= kills, (data_kills, random_kills, duplicates)
    print(f"kills={kills} (in DATA window {data_kills}) duplicates={duplicates}")
