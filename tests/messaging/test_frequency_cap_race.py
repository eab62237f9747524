"""The marketing frequency cap holds when two dispatchers, each on its own database connection, claim
marketing emails for the same customers at the same moment (real SMTP sandbox, injected clock).

Without serialisation the race is: dispatcher A claims a customer's email and counts what is committed
(one sent: below the cap of two), dispatcher B claims the same customer's next email (SKIP LOCKED) and counts
the same committed state, and both mark ``sending`` and send. The test forces exactly that interleaving:
each dispatcher's claim commit waits (a rendezvous, no sleeps) until the other dispatcher has reached its own
claim commit, has finished, or is blocked by it in the database. So without the per-customer lock both claims
are committed together and the customer gets three emails; with it, B waits inside its cap check, A commits,
and B's count sees A's ``sending`` row.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from jobs.dispatch import dispatch_due
from plugin.context import JobContext
from plugin.db import Database
from plugin.models import Customer, Message
from sandbox.smtp import SmtpSandbox
from tests.messaging import seed
from tests.messaging.conftest import IN_WINDOW

CAP = 2  # app.toml's default marketing_cap_count
CUSTOMERS = 5
SECOND_ROUND = 4  # marketing emails per customer due after each already got one
WAIT_LIMIT = 60.0  # a broken rendezvous fails the test instead of hanging it


class Rendezvous:
    """Hold each dispatcher's claim commit until the other one is at its own, has finished, or is blocked by it."""

    def __init__(self, names: tuple[str, str], blocked_by_me: Callable[[str, Session], bool]):
        self.names = names
        self.blocked_by_me = blocked_by_me
        self.cond = threading.Condition()
        self.waiting = dict.fromkeys(names, False)
        self.released = dict.fromkeys(names, False)
        self.done = dict.fromkeys(names, False)
        self.in_begin = dict.fromkeys(names, False)
        self.outcomes: Counter[str] = Counter()

    def other(self, me: str) -> str:
        """Return the other dispatcher's name."""
        return self.names[1] if me == self.names[0] else self.names[0]

    def arrive(self, me: str, session: Session) -> None:
        """Wait at a claim commit (see the class docstring)."""
        other = self.other(me)
        with self.cond:
            if self.waiting[other]:
                self.waiting[other] = False
                self.released[other] = True
                self.outcomes["paired"] += 1
                self.cond.notify_all()
                return
            self.waiting[me] = True
            deadline = time.monotonic() + WAIT_LIMIT
            while not self.released[me]:
                if self.done[other]:
                    self.outcomes["other finished"] += 1
                    break
                if self.blocked_by_me(me, session):
                    self.outcomes["other blocked"] += 1
                    break
                if time.monotonic() > deadline:
                    raise AssertionError(f"rendezvous: {me} waited {WAIT_LIMIT} s for {other}")
                # Wakes at once when the other dispatcher arrives; the timeout only re-checks the database.
                self.cond.wait(0.005)
            self.waiting[me] = False
            self.released[me] = False

    def finish(self, me: str) -> None:
        """Note that a dispatcher's run is over."""
        with self.cond:
            self.done[me] = True
            self.cond.notify_all()


def _is_claim_commit(session: Session) -> bool:
    return any(isinstance(obj, Message) and obj.status == "sending" for obj in session.dirty)


def _instrument(database: Database, name: str, rendezvous: Rendezvous) -> None:
    """Put the rendezvous before this dispatcher's claim commits and track its SQLite BEGINs."""
    @event.listens_for(database.sessionmaker, "before_commit")
    def _before_commit(session: Session) -> None:
        if _is_claim_commit(session):
            rendezvous.arrive(name, session)

    if database.dialect == "sqlite":
        # plugin/db.py starts every transaction with BEGIN IMMEDIATE, which waits while the other holds the lock.
        @event.listens_for(database.engine, "before_cursor_execute")
        def _entering(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if statement == "BEGIN IMMEDIATE":
                rendezvous.in_begin[name] = True

        @event.listens_for(database.engine, "after_cursor_execute")
        def _entered(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if statement == "BEGIN IMMEDIATE":
                rendezvous.in_begin[name] = False


def _run_concurrently(app, smtp: SmtpSandbox, database_url: str) -> tuple[list[dict[str, int]], Counter[str]]:
    """Run two dispatchers at once, each with its own engine; return their counts and the rendezvous outcomes."""
    monitor = app.extensions["aftercare.db"]
    names = ("w1", "w2")
    rendezvous: Rendezvous

    def blocked_by_me(me: str, session: Session) -> bool:
        if monitor.dialect == "sqlite":
            # Inside our transaction we hold SQLite's write lock: a BEGIN IMMEDIATE under way waits for us.
            return rendezvous.in_begin[rendezvous.other(me)]
        pid = session.connection().connection.dbapi_connection.info.backend_pid
        with monitor.engine.connect() as conn:
            return bool(conn.execute(text(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid)))"),
                {"pid": pid}).scalar())

    rendezvous = Rendezvous(names, blocked_by_me)
    databases = {name: Database(database_url) for name in names}
    results: dict[str, dict[str, int]] = {}
    errors: list[BaseException] = []

    def run(name: str) -> None:
        ctx = JobContext(config=app.config["AFTERCARE"], database=databases[name],
                         vault=app.extensions["aftercare.vault"], clock=app.extensions["aftercare.clock"],
                         sleep=lambda _s: None,
                         extras={"smtp_url": f"smtp://127.0.0.1:{smtp.port}", "base_url": "https://aftercare.test"})
        try:
            results[name] = dispatch_due(ctx, worker_id=name)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            rendezvous.finish(name)

    try:
        for name in names:
            _instrument(databases[name], name, rendezvous)
        threads = [threading.Thread(target=run, args=(name,), name=f"dispatcher-{name}") for name in names]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in threads)
    finally:
        for database in databases.values():
            database.dispose()
    assert errors == []
    return [results[name] for name in names], rendezvous.outcomes


def test_cap_holds_under_two_concurrent_dispatchers(app, clock, smtp: SmtpSandbox, database_url: str) -> None:
    clock.set(IN_WINDOW)
    second_round_at = IN_WINDOW + timedelta(minutes=30)  # still inside 09:00-11:00 London
    with app.extensions["aftercare.db"].session() as s:
        store = seed.store(s)
        emails: dict[int, str] = {}
        for n in range(CUSTOMERS):
            customer = seed.customer(s, store, n)
            emails[customer.id] = customer.email
            product = seed.order(s, store, customer, n).lines[0].product_id
            # One reminder due now, then a run of reminders for the same customer, consecutive in the queue.
            for i in range(1 + SECOND_ROUND):
                seed.message(s, store, customer, flow="replenishment", marketing=True, product_id=product,
                             key=f"{store.id}:replenishment:c={customer.id}:n={i}",
                             when=IN_WINDOW if i == 0 else second_round_at,
                             payload={"product_title": f"Soap {n}", "quantity": 1,
                                      "run_out_at": (IN_WINDOW + timedelta(days=7)).isoformat()})

    first, _ = _run_concurrently(app, smtp, database_url)
    assert sum(r.get("sent", 0) for r in first) == CUSTOMERS
    assert sorted(m.envelope_to[0] for m in smtp.messages) == sorted(emails.values())

    clock.set(second_round_at)
    second, outcomes = _run_concurrently(app, smtp, database_url)
    received = Counter(m.envelope_to[0] for m in smtp.messages)
    assert received == {email: CAP for email in emails.values()}
    assert sum(r.get("sent", 0) for r in second) == CUSTOMERS * (CAP - 1)
    assert sum(r.get("skipped:frequency_cap", 0) for r in second) == CUSTOMERS * (SECOND_ROUND - CAP + 1)
    # Both dispatchers started on the same customer's run: the second had to wait for the first's commit.
    assert outcomes["other blocked"] >= 1, outcomes
    with app.extensions["aftercare.db"].session() as s:
        rows = s.execute(select(Message.customer_id, Message.status, Message.skip_reason)
                         .where(Message.flow == "replenishment")).all()
        assert {c.id for c in s.scalars(select(Customer))} == set(emails)
    by_customer: dict[int, Counter[tuple[str, str | None]]] = {}
    for customer_id, status, reason in rows:
        by_customer.setdefault(customer_id, Counter())[(status, reason)] += 1
    expected = Counter({("sent", None): CAP, ("skipped", "frequency_cap"): 1 + SECOND_ROUND - CAP})
    assert by_customer == dict.fromkeys(emails, expected)
