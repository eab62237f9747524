"""Incremental stall detection over the Shopify sandbox: after every kind of change (new order, fulfilment, carrier
event, delivery, cancellation, threshold change, calendar change, time passing) the hourly run, which reads only
the orders and parcels that changed or whose next check came, leaves exactly what a plain-Python restatement of
the rules expects, and a full recompute run right after it (rolled back) finds nothing more. Tickets whose cause
went away are resolved with a note, and the review request waits only while one is open. A parcel that stalls
again after its problem was resolved opens a new one; a ticket the merchant closed while the cause holds is not
reopened.

The reference counts business days itself (weekends, the ``holidays`` package's national holidays, days in the
store's zone); it never calls the code under test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays
import pytest
from sqlalchemy import event, select, text, update

from base.clock import FrozenClock
from jobs.schedule import run_named
from plugin import delivery_stalls as stalls
from plugin import flow_settings, tickets
from plugin.flows import delivery_stalls, runner
from plugin.models import DeliveryProblem, Message, Order, Parcel, Store, Ticket, TicketNote
from plugin.webhooks import compliance
from tests.conftest import wipe
from tests.delivery.harness import delivery_world
from tests.jobs import factory as f
from tests.jobs.conftest import make_ctx

NY = ZoneInfo("America/New_York")
LONG_BEFORE = datetime(2000, 1, 1, tzinfo=UTC)
PAID = ("PAID", "PARTIALLY_PAID", "PARTIALLY_REFUNDED")


def ny(month: int, day: int, hour: int = 12, minute: int = 0) -> datetime:
    """Return a New York wall-clock time of 2026 as a UTC instant."""
    return datetime(2026, month, day, hour, minute, tzinfo=NY).astimezone(UTC)


@dataclass
class Rules:
    """The stall rules, restated: thresholds and calendar as the merchant set them."""

    country: str = "US"
    zone: ZoneInfo = NY
    n: dict[str, int] = field(default_factory=lambda: {"unfulfilled": 2, "no_scan": 3, "lost": 10,
                                                       "past_estimate": 1})
    off: set[str] = field(default_factory=set)

    def waited(self, since: datetime, now: datetime, n: int) -> bool:
        """Say whether ``n`` business days lie strictly between the local days of ``since`` and ``now`` (and
        ``now`` is a later day: zero days means "since yesterday")."""
        first, last = since.astimezone(self.zone).date(), now.astimezone(self.zone).date()
        national = holidays.country_holidays(self.country, years=range(first.year, last.year + 1))
        days = [first + timedelta(days=k) for k in range(1, (last - first).days)]
        return last > first and sum(1 for d in days if d.weekday() < 5 and d not in national) >= n

    def problems(self, order: Order, parcel: Parcel | None, now: datetime) -> set[str]:
        """Return the problems an order (``parcel`` None) or one of its parcels shows at ``now``."""
        if order.cancelled_at is not None:
            return set()
        found = set()
        if parcel is None:
            if (order.fulfilled_at is None and order.financial_status in PAID
                    and order.created_at_remote >= now - timedelta(days=60)
                    and self.waited(order.created_at_remote, now, self.n["unfulfilled"])):
                found.add("unfulfilled")
            return found - self.off
        if (parcel.delivered_at is not None or parcel.fulfillment_status == "CANCELLED" or parcel.shipped_at is None
                or parcel.shipped_at < now - timedelta(days=60)):
            return set()
        if parcel.status == "ATTEMPTED_DELIVERY":
            found.add("attempted")
        if parcel.status == "FAILURE":
            return {"failed"} - self.off
        if parcel.status == "DELIVERED":
            return found - self.off
        silent = parcel.last_event_at or parcel.shipped_at
        for kind in ("no_scan", "lost"):
            if self.waited(silent, now, self.n[kind]):
                found.add(kind)
        if parcel.estimated_delivery_at is not None and self.waited(parcel.estimated_delivery_at, now,
                                                                     self.n["past_estimate"]):
            found.add("past_estimate")
        return found - self.off

    def gone(self, problem: str, order: Order, parcel: Parcel | None, now: datetime) -> bool:
        """Say whether a recorded problem's cause went away (the window aside: an old problem stays)."""
        if order.cancelled_at is not None:
            return True
        if parcel is None:
            return order.fulfilled_at is not None or order.financial_status not in PAID
        if parcel.fulfillment_status == "CANCELLED" or parcel.delivered_at is not None:
            return True
        if problem == "attempted":
            return parcel.status != "ATTEMPTED_DELIVERY"
        if problem == "failed":
            return parcel.status != "FAILURE"
        if parcel.status in ("DELIVERED", "FAILURE"):
            return True
        if problem in ("no_scan", "lost"):
            return not self.waited(parcel.last_event_at or parcel.shipped_at, now, self.n[problem])
        return parcel.estimated_delivery_at is not None and not self.waited(parcel.estimated_delivery_at, now,
                                                                              self.n["past_estimate"])


@dataclass
class Reference:
    """What detection must have done so far: a problem recorded when its rule holds and none of its kind is open for
    the subject, each open until its cause goes (then the subject can have a new one)."""

    rules: Rules
    # (problem, subject) -> the status of each of its problems, in the order they were found
    recorded: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def run(self, session, store_id: int, now: datetime) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
        """Apply one hourly run to the stored orders and parcels; return the problems opened and resolved."""
        orders = {o.id: o for o in session.scalars(select(Order).where(Order.store_id == store_id))}
        subjects: list[tuple[str, Order, Parcel | None]] = [(f"order={o.id}", o, None) for o in orders.values()]
        subjects += [(f"parcel={p.id}", orders[p.order_id], p)
                     for p in session.scalars(select(Parcel).where(Parcel.store_id == store_id))]
        opened, resolved = set(), set()
        for subject, order, parcel in subjects:
            for problem in self.rules.problems(order, parcel, now):
                history = self.recorded.setdefault((problem, subject), [])
                if "open" not in history:
                    history.append("open")
                    opened.add((problem, subject))
        for subject, order, parcel in subjects:
            for problem in ("unfulfilled",) if parcel is None else ("no_scan", "lost", "past_estimate", "attempted",
                                                                    "failed"):
                key = (problem, subject)
                history = self.recorded.get(key, [])
                if history and history[-1] == "open" and self.rules.gone(problem, order, parcel, now):
                    history[-1] = "resolved"
                    resolved.add(key)
        return opened, resolved


def stored(world) -> tuple[dict[tuple[str, str], list[str]], set[int]]:
    """Return the ticket status of each recorded problem per kind and subject, and the orders told "we're on it"."""
    with world.session() as s:
        rows = s.execute(select(DeliveryProblem.problem, DeliveryProblem.subject, Ticket.status,
                                DeliveryProblem.resolved_at)
                         .join(Ticket, Ticket.id == DeliveryProblem.ticket_id).order_by(DeliveryProblem.id)).all()
        told = set(s.scalars(select(Message.order_id).where(Message.flow == "delivery_stalls",
                                                            Message.step == "notice")))
    found: dict[tuple[str, str], list[str]] = {}
    for problem, subject, status, resolved_at in rows:
        assert (status == "resolved") == (resolved_at is not None)  # nobody closes a ticket by hand here
        found.setdefault((problem, subject), []).append(status)
    return found, told


def full_recompute_finds_nothing(world, now: datetime) -> None:
    """Run the full path on the same data (rolled back): the incremental run must have left nothing for it."""
    db = world.env.app.extensions["aftercare.db"]
    with db.sessionmaker() as s:
        try:
            store = s.get(Store, world.store_id)
            settings = runner.load_settings(s, world.ctx().config, delivery_stalls.FLOW, world.store_id)
            outcome = stalls.detect(s, world.ctx().config, store, settings, now, full=True)
            assert (outcome.full, outcome.found, outcome.resolved) == (True, [], [])
        finally:
            s.rollback()


def test_incremental_runs_match_the_rules_after_every_kind_of_change(database_url: str, tmp_path: Path,
                                                                     clock: FrozenClock) -> None:
    start = ny(3, 2, 9)  # Monday 2 March 2026; the clocks go forward on Sunday 8 March
    with delivery_world(database_url, tmp_path, clock, start) as world:
        sb = world.env.sandbox
        with world.session() as s:
            store = s.get(Store, world.store_id)
            store.country, store.timezone = "US", "America/New_York"
        ref = Reference(Rules())
        variant = sb.store.products[0].variants[0].id
        people = [c.id for c in sb.store.customers]
        placed: dict[str, object] = {}
        parcels: dict[str, object] = {}
        orders_of: dict[str, int] = {}

        def run(at: datetime, *, incremental: bool = True) -> dict[str, int]:
            clock.set(at)
            world.step()
            counts = delivery_stalls.run(world.ctx(), world.store_id)
            with world.session() as s:
                opened, resolved = ref.run(s, world.store_id, at)
            assert counts["stalls"] == len(opened), (at, counts, opened)
            assert counts.get("resolved", 0) == len(resolved), (at, counts, resolved)
            got, told = stored(world)
            assert got == ref.recorded, at
            with world.session() as s:
                problem_orders = set(s.scalars(select(DeliveryProblem.order_id)))
            assert told == problem_orders, at  # one "we're on it" per order with a problem, none for others
            full_recompute_finds_nothing(world, at)
            with world.session() as s:
                state = s.get(stalls.DeliveryStallState, world.store_id)
                assert state.checked_at == at
                # The database's clock (updated_at, the high-water mark) runs in wall time, seconds apart here:
                # what this run read is made old, so the next run reads only what changes from now on and the
                # rows whose stored next check has come.
                for table in (Order.__table__, Parcel.__table__):
                    s.execute(update(table).values(updated_at=LONG_BEFORE))
            return counts

        def order(name: str, k: int) -> None:
            placed[name] = sb.add_order(people[k], [(variant, 1)])
            world.step()
            with world.session() as s:
                orders_of[name] = s.scalar(select(Order.id).where(Order.external_id == str(placed[name].id)))

        def ship(name: str) -> None:
            parcels[name] = sb.fulfil_order(placed[name].id)

        def event(name: str, status: str, estimate: datetime | None = None) -> None:
            sb.add_fulfillment_event(placed[name].id, status, clock.now(), fulfillment_id=parcels[name].id,
                                     estimated_delivery_at=estimate)

        for k, name in enumerate("ABCDEFG"):
            order(name, k % len(people))
        run(ny(3, 2, 9, 30))
        clock.set(ny(3, 2, 10))
        for name in "BCDEG":
            ship(name)
        clock.set(ny(3, 2, 12))
        for name in "BCEG":
            event(name, "IN_TRANSIT")
        event("D", "IN_TRANSIT", estimate=ny(3, 3, 18))
        run(ny(3, 2, 15))
        clock.set(ny(3, 3, 10))
        sb.cancel_order(placed["F"].id)                   # cancelled before it could stall
        clock.set(ny(3, 3, 15))
        event("C", "ATTEMPTED_DELIVERY")
        assert run(ny(3, 3, 16))["stalls"] == 1          # attempted
        clock.set(ny(3, 4, 10))
        event("E", "FAILURE")
        assert run(ny(3, 4, 11))["stalls"] == 1          # failed
        assert run(ny(3, 4, 23, 59))["stalls"] == 0      # nothing is due before midnight
        assert run(ny(3, 5, 0, 30))["stalls"] == 2       # A unfulfilled (Tue, Wed), D past its estimate (Wed)
        clock.set(ny(3, 5, 10))
        event("C", "DELIVERED")
        assert run(ny(3, 5, 11))["resolved"] == 1        # delivered: the attempted ticket goes
        assert run(ny(3, 6, 0, 30))["stalls"] == 3       # B, D and G: no carrier event on Tue, Wed, Thu
        clock.set(ny(3, 6, 11))
        ship("A")
        assert run(ny(3, 6, 11, 30))["resolved"] == 1    # fulfilled: the unfulfilled ticket goes
        clock.set(ny(3, 6, 12))
        event("B", "IN_TRANSIT")
        event("D", "IN_TRANSIT", estimate=ny(3, 9, 18))
        assert run(ny(3, 6, 12, 30))["resolved"] == 3    # new scans (B, D), a later estimate (D)
        clock.set(ny(3, 6, 13))
        sb.cancel_order(placed["G"].id)
        assert run(ny(3, 6, 13, 30))["resolved"] == 1    # cancelled
        quiet = run(ny(3, 6, 14, 30))
        assert (quiet["stalls"], quiet.get("resolved", 0)) == (0, 0)
        # The merchant lowers the no-scan threshold: stored next checks no longer hold, all are recomputed.
        clock.set(ny(3, 9, 10))
        with world.session() as s:
            flow_settings.update(s, world.ctx().config, world.store_id, "delivery_stalls",
                                 {"no_scan_after_business_days": 1})
        ref.rules.n["no_scan"] = 1
        run(ny(3, 9, 10, 30))
        # Silent on Monday: A's parcel, and B's and D's again (their no-scan problems went with Friday's scans).
        assert run(ny(3, 10, 0, 30))["stalls"] == 3
        clock.set(ny(3, 10, 10))
        event("B", "DELIVERED")
        order("H", 1)
        assert run(ny(3, 10, 11))["resolved"] == 1       # B's second no-scan problem: delivered
        assert run(ny(3, 11, 0, 30))["stalls"] == 1      # D past its new estimate (Monday's, Tuesday passed)
        assert run(ny(3, 13, 0, 30))["stalls"] == 1      # H: unfulfilled (Wed, Thu)
        run(ny(3, 16, 9))
        assert run(ny(3, 23, 9))["stalls"] == 2          # A's and D's parcels: presumed lost after 10 days

        with world.session() as s:
            notes: dict[tuple[str, int], list[str | None]] = {}
            for p in s.scalars(select(DeliveryProblem).order_by(DeliveryProblem.id)):
                notes.setdefault((p.problem, p.order_id), []).append(s.get(Ticket, p.ticket_id).resolution)
            by_ticket = {n.ticket_id: n.body for n in s.scalars(select(TicketNote))}
            assert set(by_ticket.values()) == {v for values in notes.values() for v in values if v}
        auto = "Resolved automatically: "
        assert notes[("attempted", orders_of["C"])] == [auto + "the parcel was delivered."]
        assert notes[("unfulfilled", orders_of["A"])] == [auto + "the order was fulfilled."]
        assert notes[("no_scan", orders_of["B"])] == [auto + "a new carrier event moved it on.",
                                                      auto + "the parcel was delivered."]
        assert notes[("no_scan", orders_of["D"])] == [auto + "a new carrier event moved it on.", None]
        assert notes[("past_estimate", orders_of["D"])] == [auto + "the carrier gave a later estimate.", None]
        assert notes[("no_scan", orders_of["G"])] == [auto + "the order was cancelled."]
        assert notes[("failed", orders_of["E"])] == [None]


@cache
def _national(country: str) -> holidays.HolidayBase:
    return holidays.country_holidays(country, years=(2026,))


def _waited(first: date, last: date, country: str, n: int) -> bool:
    national = _national(country)
    return last > first and sum(1 for k in range(1, (last - first).days)
                                if (first + timedelta(days=k)).weekday() < 5
                                and first + timedelta(days=k) not in national) >= n


def test_stored_moments_are_never_later_than_the_rule() -> None:
    """The next-check moment of an instant is exactly when the rule first holds, across holidays and DST."""
    from plugin.business_days import Calendar

    for country, zone in (("US", "America/New_York"), ("GB", "Europe/London"), ("JP", "Asia/Tokyo")):
        calendar, tz = Calendar.for_store(country, zone), ZoneInfo(zone)
        for n in (0, 1, 2, 3, 10):
            for hours in range(0, 24 * 70, 7):
                x = datetime(2026, 2, 20, tzinfo=UTC) + timedelta(hours=hours)
                moment = calendar.add_business_days(x, n)
                # The rule first holds at the start of a local day; an hour before it, it does not yet.
                assert _waited(x.astimezone(tz).date(), moment.astimezone(tz).date(), country, n)
                before = moment - timedelta(hours=1)
                assert not _waited(x.astimezone(tz).date(), before.astimezone(tz).date(), country, n)
                assert moment.astimezone(tz).time().hour == 0
                assert x < calendar.cutoff(moment, n) and not x < calendar.cutoff(before, n)


@pytest.fixture
def ctx(database, clock, tmp_path):
    """Return a job context on a wiped database (as tests/jobs does)."""
    wipe(database.engine)
    yield make_ctx(database, clock, tmp_path)
    wipe(database.engine)


def test_a_delivery_resolves_the_attempted_ticket_and_the_review_request_stops_waiting(ctx):
    t0 = ny(9, 16)
    ctx.clock.set(t0)
    with ctx.database.session() as s:
        st = f.store(s, country="US", timezone="America/New_York")
        fixed, held = f.customer(s, st.id), f.customer(s, st.id)
        order = f.order(s, st.id, fixed.id, t0 - timedelta(days=10), financial_status="PAID")
        p = Parcel(store_id=st.id, order_id=order.id, fulfillment_gid="gid://shopify/Fulfillment/1",
                   status="ATTEMPTED_DELIVERY", tracking_company="UPS", tracking_number="1Z1",
                   shipped_at=t0 - timedelta(days=8), last_event_at=t0 - timedelta(hours=20))
        s.add(p)
        order.fulfilled_at = p.shipped_at
        # The control: delivered too, with a delivery ticket the merchant opened by hand (no cause to watch).
        other = f.order(s, st.id, held.id, t0 - timedelta(days=10), financial_status="PAID",
                        fulfilled_at=t0 - timedelta(days=8), delivered_at=t0 + timedelta(days=1))
        tickets.open_ticket(s, ctx.config, store_id=st.id, source="delivery", severity=3, subject="by hand",
                            now=t0, customer_id=held.id, order_id=other.id)
        s.flush()
        sid, oid, pid, other_id = st.id, order.id, p.id, other.id
    assert delivery_stalls.run(ctx, sid) == {"notices": 1, "skipped": 0, "stalls": 1, "tickets": 1}
    delivered = t0 + timedelta(days=1)
    ctx.clock.set(delivered + timedelta(hours=1))
    with ctx.database.session() as s:  # what the delivery event's ingest writes
        parcel, order = s.get(Parcel, pid), s.get(Order, oid)
        parcel.status, parcel.delivered_at, parcel.last_event_at = "DELIVERED", delivered, delivered
        order.delivered_at = delivered
    assert delivery_stalls.run(ctx, sid) == {"notices": 0, "skipped": 0, "stalls": 0, "tickets": 0, "resolved": 1}
    with ctx.database.session() as s:
        ticket = s.scalar(select(Ticket).where(Ticket.order_id == oid))
        assert (ticket.status, ticket.resolution, ticket.resolved_at) == (
            "resolved", "Resolved automatically: the parcel was delivered.", delivered + timedelta(hours=1))
        assert [n.body for n in s.scalars(select(TicketNote).where(TicketNote.ticket_id == ticket.id))] == [
            "Resolved automatically: the parcel was delivered."]
    ctx.clock.set(delivered + timedelta(days=8))  # the review request is due 7 days after delivery
    runner.run_review_request(ctx, sid)
    with ctx.database.session() as s:
        asked = set(s.scalars(select(Message.order_id).where(Message.flow == "review_request")))
    assert asked == {oid} and other_id not in asked


def _paid_shipped_order(s, t0: datetime, email: str | None = None, **store: object):
    """Add a New York store, a customer and their paid order shipped 8 days before ``t0``; return all three."""
    st = f.store(s, country="US", timezone="America/New_York", **store)
    person = f.customer(s, st.id, **({"email": email} if email else {}))
    order = f.order(s, st.id, person.id, t0 - timedelta(days=10), financial_status="PAID",
                    fulfilled_at=t0 - timedelta(days=8))
    return st, person, order


def _failed_parcel(s, store_id: int, order_id: int, t0: datetime, tracking: str = "1Z1") -> Parcel:
    """Add the order's parcel, shipped 8 days before ``t0``, whose carrier reported FAILURE 2 hours before it."""
    parcel = Parcel(store_id=store_id, order_id=order_id, fulfillment_gid="gid://shopify/Fulfillment/1",
                    status="FAILURE", tracking_company="UPS", tracking_number=tracking,
                    shipped_at=t0 - timedelta(days=8), last_event_at=t0 - timedelta(hours=2))
    s.add(parcel)
    s.flush()
    return parcel


def test_a_ticket_closed_by_hand_is_not_reopened_and_a_second_failure_opens_a_new_one(ctx):
    t0 = ny(9, 16)
    ctx.clock.set(t0)
    with ctx.database.session() as s:
        st, person, order = _paid_shipped_order(s, t0)
        p = _failed_parcel(s, st.id, order.id, t0)
        sid, pid = st.id, p.id
    assert delivery_stalls.run(ctx, sid) == {"notices": 1, "skipped": 0, "stalls": 1, "tickets": 1}
    with ctx.database.session() as s:
        [first] = s.scalars(select(Ticket)).all()
        tickets.resolve_ticket(s, first.id, "Called the carrier; they will try again", t0 + timedelta(hours=1))
    # Still a failure: the merchant's closing stands, hour after hour, and a full recompute finds nothing either.
    for hours in (2, 3, 26):
        ctx.clock.set(t0 + timedelta(hours=hours))
        assert delivery_stalls.run(ctx, sid) == {"notices": 0, "skipped": 0, "stalls": 0, "tickets": 0}
    with ctx.database.sessionmaker() as s:
        try:
            settings = runner.load_settings(s, ctx.config, delivery_stalls.FLOW, sid)
            outcome = stalls.detect(s, ctx.config, s.get(Store, sid), settings, ctx.clock.now(), full=True)
            assert (outcome.found, outcome.resolved) == ([], [])
        finally:
            s.rollback()

    def carrier(status: str, at: datetime) -> None:
        """Write what a carrier event's ingest writes to the parcel (updated_at moves on the database's clock)."""
        with ctx.database.session() as s:
            parcel = s.get(Parcel, pid)
            parcel.status, parcel.last_event_at = status, at

    carrier("OUT_FOR_DELIVERY", t0 + timedelta(hours=27))
    ctx.clock.set(t0 + timedelta(hours=28))
    # The cause went: the problem is resolved without touching the closed ticket (no note, nothing counted).
    assert delivery_stalls.run(ctx, sid) == {"notices": 0, "skipped": 0, "stalls": 0, "tickets": 0}
    carrier("FAILURE", t0 + timedelta(hours=30))
    ctx.clock.set(t0 + timedelta(hours=31))
    # A second failure is news: a new ticket; the customer was told "we're on it" once for the order already.
    assert delivery_stalls.run(ctx, sid) == {"notices": 0, "skipped": 0, "stalls": 1, "tickets": 1}
    with ctx.database.session() as s:
        rows = s.execute(select(DeliveryProblem.problem, DeliveryProblem.resolved_at, Ticket.status, Ticket.resolution)
                         .join(Ticket, Ticket.id == DeliveryProblem.ticket_id).order_by(DeliveryProblem.id)).all()
        assert [tuple(r) for r in rows] == [
            ("failed", t0 + timedelta(hours=28), "resolved", "Called the carrier; they will try again"),
            ("failed", None, "open", None)]
        assert s.scalars(select(TicketNote.body)).all() == []


def _mentions(ctx, needle: str) -> set[str]:
    """Return the tables of the tickets, notes and messages whose text holds ``needle``."""
    found = set()
    with ctx.database.session() as s:
        for model, columns in ((Ticket, ("subject", "resolution")), (TicketNote, ("body",)),
                               (Message, ("subject", "payload", "to_address")), (Parcel, ("tracking_number",))):
            for row in s.scalars(select(model)):
                if any(needle in str(getattr(row, c) or "") for c in columns):
                    found.add(model.__tablename__)
    return found


def test_a_redacted_customers_parcel_that_fails_again_leaves_no_tracking_number_behind(ctx):
    """customers/redact erased the parcel's tracking; a fulfilment update brings it back, the parcel fails again.

    The new ticket, the merchant's alert about it and the customer's (skipped) notice must not quote the tracking
    number, and after the daily sweep nothing does.
    """
    t0 = ny(9, 16)
    ctx.clock.set(t0)
    with ctx.database.session() as s:
        st, person, order = _paid_shipped_order(s, t0)
        p = _failed_parcel(s, st.id, order.id, t0, tracking="1ZTRACK77")
        sid, pid, external, email = st.id, p.id, person.external_id, person.email
    assert delivery_stalls.run(ctx, sid)["stalls"] == 1
    runner.run_ticket_alert(ctx, sid)
    with ctx.database.session() as s:
        compliance.redact_customer(s, s.get(Store, sid), "x", {"customer": {"id": external, "email": email}},
                                   t0 + timedelta(hours=1))
    assert _mentions(ctx, "1ZTRACK77") == set()

    def carrier(status: str, at: datetime, tracking: str | None = None) -> None:
        with ctx.database.session() as s:
            parcel = s.get(Parcel, pid)
            parcel.status, parcel.last_event_at = status, at
            if tracking:
                parcel.tracking_number = tracking  # a fulfillments/update after the redaction

    carrier("OUT_FOR_DELIVERY", t0 + timedelta(hours=2))
    ctx.clock.set(t0 + timedelta(hours=3))
    assert delivery_stalls.run(ctx, sid)["resolved"] == 1
    carrier("FAILURE", t0 + timedelta(hours=4), tracking="1ZTRACK77")
    ctx.clock.set(t0 + timedelta(hours=5))
    # A new ticket; no second "we're on it" for the order (and none could reach them: redacted).
    assert delivery_stalls.run(ctx, sid) == {"notices": 0, "skipped": 0, "stalls": 1, "tickets": 1}
    runner.run_ticket_alert(ctx, sid)
    # The re-stall's ticket and its alert name the parcel by its id, as for any parcel without a tracking number.
    assert _mentions(ctx, "1ZTRACK77") == {"parcel"}
    with ctx.database.session() as s:
        subjects = s.scalars(select(Ticket.subject).order_by(Ticket.id)).all()
        order_name = s.scalar(select(Order.name))
    assert subjects == ["", f"Order {order_name} (parcel #{pid}): delivery failed"]
    assert run_named(ctx, "redaction_sweep", sid).results[sid] == {"orders": 1, "parcel_events": 0, "tickets": 1,
                                                                   "messages": 0}
    assert _mentions(ctx, "1ZTRACK77") == set()


def test_a_detection_that_raced_the_redaction_leaves_nothing_after_the_sweep(ctx):
    """PostgreSQL READ COMMITTED: the hourly run reads the customer and the parcel's tracking, customers/redact
    commits in between, the run commits its ticket (the tracking in its subject) and its "we're on it" notice (the
    customer's address): the redaction saw neither, the daily sweep erases both."""
    if ctx.database.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: the redaction waits for the run's commit")
    t0 = ny(9, 16)
    ctx.clock.set(t0)
    with ctx.database.session() as s:
        st, person, order = _paid_shipped_order(s, t0, email="zephyrine.race@example.test", protected_data_access=True)
        _failed_parcel(s, st.id, order.id, t0, tracking="1ZRACE88")
        sid, external, email = st.id, person.external_id, person.email
    with ctx.database.sessionmaker() as run:
        assert delivery_stalls.run_for_store(run, ctx.config, sid, t0) == {"notices": 1, "skipped": 0, "stalls": 1,
                                                                           "tickets": 1}
        with ctx.database.session() as s:  # not blocked by the run's uncommitted rows
            s.execute(text("SET LOCAL lock_timeout = '5s'"))
            compliance.redact_customer(s, s.get(Store, sid), "x", {"customer": {"id": external, "email": email}},
                                       t0 + timedelta(minutes=1))
        run.commit()
    runner.run_ticket_alert(ctx, sid)
    assert _mentions(ctx, "1ZRACE88") == {"ticket", "message"}
    assert _mentions(ctx, email) == {"message"}
    ctx.clock.set(t0 + timedelta(days=1))
    assert run_named(ctx, "redaction_sweep", sid).results[sid] == {"orders": 1, "parcel_events": 0, "tickets": 1,
                                                                   "messages": 1}
    assert _mentions(ctx, "1ZRACE88") == set()
    assert _mentions(ctx, email) == set()
    with ctx.database.session() as s:
        assert s.execute(select(Message.flow, Message.status, Message.skip_reason).order_by(Message.id)).all() == [
            ("delivery_stalls", "cancelled", compliance.REDACTED_SKIP_REASON), ("ticket_alert", "scheduled", None)]


def test_a_merchant_resolving_the_ticket_while_the_run_reads_it_keeps_their_resolution(ctx):
    """PostgreSQL READ COMMITTED: the run reads the problem's ticket as open, the merchant resolves it and commits,
    then the run resolves it "automatically". The merchant's words are what the customer's follow-up quotes: they
    stay, no note is added, and the run does not count the ticket as its own."""
    if ctx.database.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: the merchant's resolve waits for the run's commit")
    t0 = ny(9, 16)
    ctx.clock.set(t0)
    with ctx.database.session() as s:
        st, person, order = _paid_shipped_order(s, t0)
        p = _failed_parcel(s, st.id, order.id, t0)
        sid, pid = st.id, p.id
    assert delivery_stalls.run(ctx, sid)["tickets"] == 1
    with ctx.database.session() as s:
        tid = s.scalar(select(Ticket.id))
        s.get(Parcel, pid).status = "DELIVERED"
    later = t0 + timedelta(hours=3)
    merchant_words = "Sent a replacement by courier"
    interleaved = []

    def merchant_resolves(conn, cursor, statement, parameters, context, executemany):
        if "FROM delivery_problem LEFT OUTER JOIN ticket" in statement and not interleaved:
            interleaved.append(statement)
            with ctx.database.session() as m:
                tickets.resolve_ticket(m, tid, merchant_words, later)

    with ctx.database.sessionmaker() as run:
        settings = runner.load_settings(run, ctx.config, delivery_stalls.FLOW, sid)
        event.listen(run.connection(), "after_cursor_execute", merchant_resolves)
        assert stalls.resolve_gone(run, run.get(Store, sid), settings, later + timedelta(minutes=1), None) == []
        run.commit()
    assert len(interleaved) == 1
    with ctx.database.session() as s:
        ticket = s.get(Ticket, tid)
        assert (ticket.status, ticket.resolution, ticket.resolved_at) == ("resolved", merchant_words, later)
        assert s.scalars(select(TicketNote.body)).all() == []
        assert s.scalar(select(DeliveryProblem.resolved_at)) == later + timedelta(minutes=1)


def test_a_redacted_customers_first_delivery_problem_quotes_no_tracking_number(ctx):
    """The parcel's tracking came back after customers/redact (a fulfilment update) and it fails: the skipped
    notice row and the ticket hold no tracking number, and the notice is skipped (nobody to write to)."""
    t0 = ny(9, 16)
    ctx.clock.set(t0)
    with ctx.database.session() as s:
        st, person, order = _paid_shipped_order(s, t0)
        compliance.redact_customer(s, st, st.external_id, {"customer": {"id": person.external_id,
                                                                         "email": person.email}}, t0)
        p = _failed_parcel(s, st.id, order.id, t0, tracking="1ZLATE55")
        sid, pid, name = st.id, p.id, order.name
    assert delivery_stalls.run(ctx, sid) == {"notices": 0, "skipped": 1, "stalls": 1, "tickets": 1}
    assert _mentions(ctx, "1ZLATE55") == {"parcel"}
    with ctx.database.session() as s:
        assert s.scalar(select(Ticket.subject)) == f"Order {name} (parcel #{pid}): delivery failed"
        notice = s.scalar(select(Message).where(Message.flow == "delivery_stalls"))
        assert (notice.status, notice.to_address, notice.payload["tracking_number"], notice.payload["carrier"]) == (
            "skipped", None, "", "UPS")
