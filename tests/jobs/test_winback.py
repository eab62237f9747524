"""Win-back planning: who is dormant (computed here from the orders, independently of the flow's SQL), the paced
backfill, re-entry, the reminder, the exit on a new order, holdout and time zones / leap days."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from plugin import flow_settings
from plugin.flows import runner, winback
from plugin.flows.base import FlowRun
from plugin.flows.holdout import is_held_out
from plugin.messaging import policy
from plugin.models import Message, Order, Store
from tests.jobs import factory as f

DAY = timedelta(days=1)


def _rows(ctx, step="main", since=None):
    with ctx.database.session() as s:
        query = select(Message).where(Message.flow == "winback", Message.step == step)
        if since is not None:
            query = query.where(Message.created_at >= since)
        return {m.customer_id: (m.status, m.skip_reason, m.order_id, m.payload) for m in s.scalars(query)}


def _run(ctx, sid):
    return runner.run(ctx, sid, "winback")


def test_newly_dormant_customers_match_an_independent_count(ctx):
    rng = random.Random(1515)
    now = ctx.clock.now()
    dormant_days = 120
    last_counted: dict[int, tuple[datetime, int]] = {}
    zones = ["Asia/Tokyo", "America/Los_Angeles", "Europe/Berlin", "Australia/Sydney", None]
    with ctx.database.session() as s:
        st = f.store(s)
        other = f.store(s, name="Other")
        p = f.product(s, st.id)
        for i in range(120):
            c = f.customer(s, st.id, time_zone=zones[i % len(zones)], consent=rng.random() < 0.8)
            for _ in range(rng.randint(1, 3)):
                when = now - timedelta(days=rng.uniform(100, 140), minutes=rng.randint(0, 600))
                cancelled = rng.random() < 0.15
                o = f.order(s, st.id, c.id, when, lines=[(p.id, 1)], cancelled_at=when if cancelled else None)
                if not cancelled and (c.id not in last_counted or when > last_counted[c.id][0]):
                    last_counted[c.id] = (when, o.id)
        # Another store's dormant customer is not this store's business.
        oc = f.customer(s, other.id)
        f.order(s, other.id, oc.id, now - 125 * DAY)
        flow_settings.update(s, ctx.config, st.id, "winback", {"dormant_after_days": dormant_days})
        sid = st.id
    counts = _run(ctx, sid)
    newest, oldest = now - dormant_days * DAY, now - (dormant_days + 7) * DAY
    expected = {cid: oid for cid, (t, oid) in last_counted.items() if oldest < t <= newest}
    rows = _rows(ctx)
    assert {cid: r[2] for cid, r in rows.items()} == expected
    assert counts == {"cancelled": 0, "entered": len(expected), "not_sent": 0, "reminders": 0}
    assert {r[0] for r in rows.values()} == {"scheduled"}
    payload = next(iter(rows.values()))[3]
    assert (payload["discount_amount"], payload["discount_min_subtotal"], payload["discount_valid_days"]) == \
        (30, 100, 30)
    with ctx.database.session() as s:
        assert {m.marketing for m in s.scalars(select(Message))} == {True}
    # Running again writes nothing new.
    assert _run(ctx, sid)["entered"] == 0


def test_leap_day_and_time_zones_do_not_move_the_dormancy_moment(ctx):
    # 180 days after 29 February 2028 09:00 UTC is 27 August 2028 09:00 UTC, whatever the customer's zone.
    ctx.clock.set(datetime(2028, 8, 27, 8, 59, tzinfo=UTC))
    with ctx.database.session() as s:
        st = f.store(s)
        tokyo = f.customer(s, st.id, time_zone="Asia/Tokyo")
        la = f.customer(s, st.id, time_zone="America/Los_Angeles")
        for c in (tokyo, la):
            f.order(s, st.id, c.id, datetime(2028, 2, 29, 9, 0, tzinfo=UTC))
        sid = st.id
    assert _run(ctx, sid)["entered"] == 0
    ctx.clock.set(datetime(2028, 8, 27, 9, 0, tzinfo=UTC))
    assert _run(ctx, sid)["entered"] == 2
    assert set(_rows(ctx)) == {tokyo.id, la.id}


def test_backfill_is_paced_by_the_daily_cap_most_recently_lapsed_first(ctx):
    now = ctx.clock.now().replace(hour=6)
    ctx.clock.set(now)
    with ctx.database.session() as s:
        st = f.store(s)
        fresh = [f.customer(s, st.id) for _ in range(2)]
        for i, c in enumerate(fresh):
            f.order(s, st.id, c.id, now - (180 + i) * DAY)
        old = [f.customer(s, st.id) for _ in range(8)]
        for i, c in enumerate(old):
            f.order(s, st.id, c.id, now - (200 + 10 * i) * DAY)
        sid = st.id
    # Off by default: only the newly dormant enter.
    assert set(_rows(ctx)) == set() and _run(ctx, sid)["entered"] == 2
    with ctx.database.session() as s:
        flow_settings.update(s, ctx.config, sid, "winback", {"backfill_enabled": True, "backfill_daily_cap": 5})
    assert _run(ctx, sid)["entered"] == 3
    assert set(_rows(ctx)) == {c.id for c in fresh} | {c.id for c in old[:3]}
    assert {cid: r[3]["backfill"] for cid, r in _rows(ctx).items()} == \
        {**{c.id: False for c in fresh}, **{c.id: True for c in old[:3]}}
    ctx.clock.advance(hours=12)
    assert _run(ctx, sid)["entered"] == 0
    ctx.clock.advance(hours=12)
    assert _run(ctx, sid)["entered"] == 5
    assert set(_rows(ctx)) == {c.id for c in fresh} | {c.id for c in old}


def test_no_reentry_within_a_year_and_exit_on_any_order(ctx):
    now = ctx.clock.now()
    with ctx.database.session() as s:
        st = f.store(s)
        recent, long_ago, buyer = (f.customer(s, st.id) for _ in range(3))
        for c in (recent, long_ago, buyer):
            f.order(s, st.id, c.id, now - 180 * DAY)
        # Earlier episodes: one entered 200 days ago, one 400 days ago.
        for c, days in ((recent, 200), (long_ago, 400)):
            s.add(Message(store_id=st.id, customer_id=c.id, flow="winback", step="main", channel="email",
                          marketing=True, idempotency_key=f"old-{c.id}", scheduled_for=now - days * DAY,
                          status="sent", created_at=now - days * DAY, payload={}))
        sid = st.id
    _run(ctx, sid)
    assert set(_rows(ctx, since=now)) == {long_ago.id, buyer.id}
    with ctx.database.session() as s:
        f.order(s, sid, buyer.id, now + DAY)
    ctx.clock.advance(days=1, hours=1)
    assert _run(ctx, sid)["cancelled"] == 1
    rows = _rows(ctx, since=now)
    assert rows[buyer.id][:2] == ("cancelled", "ordered_again")
    assert rows[long_ago.id][0] == "scheduled"


def test_reminder_after_fourteen_days_carries_the_same_code_unless_they_ordered(ctx):
    now = ctx.clock.now()
    with ctx.database.session() as s:
        st = f.store(s)
        waiting, ordered = f.customer(s, st.id), f.customer(s, st.id)
        for c in (waiting, ordered):
            f.order(s, st.id, c.id, now - 180 * DAY)
        sid = st.id
    _run(ctx, sid)
    with ctx.database.session() as s:
        for m in s.scalars(select(Message).where(Message.flow == "winback")):
            # What the email channel leaves behind once it created the code and sent the email.
            m.status, m.sent_at = "sent", now
            m.payload = {**m.payload, "discount_code": f"WELCOMEBACK-{m.customer_id}", "discount_created": True,
                         "discount_ends_at": (now + 30 * DAY).isoformat()}
        f.order(s, sid, ordered.id, now + 3 * DAY)
    ctx.clock.advance(days=13, hours=23)
    assert _run(ctx, sid)["reminders"] == 0
    ctx.clock.advance(hours=1)
    assert _run(ctx, sid)["reminders"] == 1
    reminders = _rows(ctx, "reminder")
    assert set(reminders) == {waiting.id}
    status, _reason, _order, payload = reminders[waiting.id]
    assert status == "scheduled"
    assert (payload["discount_code"], payload["discount_created"]) == (f"WELCOMEBACK-{waiting.id}", True)
    assert _run(ctx, sid)["reminders"] == 0
    with ctx.database.session() as s:
        flow_settings.update(s, ctx.config, sid, "winback", {"reminder_enabled": False})
        s.execute(Message.__table__.delete().where(Message.step == "reminder"))
    assert _run(ctx, sid)["reminders"] == 0


def test_holdout_and_no_contact_rows_are_skipped_with_their_reason(ctx):
    now = ctx.clock.now()
    with ctx.database.session() as s:
        st = f.store(s)
        customers = [f.customer(s, st.id) for _ in range(60)]
        nobody = f.customer(s, st.id, email=None)
        for c in [*customers, nobody]:
            f.order(s, st.id, c.id, now - 181 * DAY)
        flow_settings.update(s, ctx.config, st.id, "winback", {"holdout_percent": 20})
        sid = st.id
    _run(ctx, sid)
    rows = _rows(ctx)
    held = {c.id for c in customers if is_held_out(sid, c.id, "winback", 20)}
    assert held and len(held) < len(customers)
    assert {cid for cid, r in rows.items() if r[1] == "holdout"} == held
    assert rows[nobody.id][:2] == ("skipped", "no_contact_access")
    assert {cid for cid, r in rows.items() if r[0] == "scheduled"} == {c.id for c in customers} - held


def test_planned_rows_wait_for_the_send_window_in_each_zone(ctx):
    # The rows are due at once; the dispatcher's policy moves each into 09:00-11:00 local (DST included).
    now = datetime(2026, 3, 29, 3, 0, tzinfo=UTC)  # the night Europe/Berlin moves to summer time
    ctx.clock.set(now)
    with ctx.database.session() as s:
        st = f.store(s)
        berlin = f.customer(s, st.id, time_zone="Europe/Berlin", country="DE")
        f.order(s, st.id, berlin.id, now - 180 * DAY)
        sid = st.id
    _run(ctx, sid)
    with ctx.database.session() as s:
        message = s.scalar(select(Message).where(Message.flow == "winback"))
        decision = policy.evaluate(s, ctx.config, message, now, {})
    assert decision.action == "reschedule"
    assert decision.at == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)  # 09:00 CEST


def _due(ctx, sid):
    """Return (customer, order, backfill?) of the win-back rows due now, in the flow's order, writing nothing."""
    with ctx.database.session() as s:
        store = s.get(Store, sid)
        settings = runner.load_settings(s, ctx.config, winback.FLOW, sid)
        run = FlowRun(session=s, config=ctx.config, store=store, settings=settings, now=ctx.clock.now())
        rows = winback.due_winbacks(run)
        s.rollback()
    return [(r["customer_id"], r["order_id"], r["payload"]["backfill"]) for r in rows]


def _full_computation(ctx, sid, dormant_days, cap):
    """Who is due, from every order and message of the store read back whole (the definition, not the flow's SQL)."""
    now = ctx.clock.now()
    with ctx.database.session() as s:
        orders = s.execute(select(Order.customer_id, Order.id, Order.created_at_remote, Order.cancelled_at)
                           .where(Order.store_id == sid)).all()
        mains = s.execute(select(Message.customer_id, Message.created_at)
                          .where(Message.store_id == sid, Message.flow == "winback", Message.step == "main")).all()
    last: dict[int, tuple[datetime, int]] = {}
    for cid, oid, created, cancelled in orders:
        created = created.replace(tzinfo=UTC) if created.tzinfo is None else created
        if cid is not None and cancelled is None and (cid not in last or (created, oid) > last[cid]):
            last[cid] = (created, oid)

    def aware(t):
        return t.replace(tzinfo=UTC) if t.tzinfo is None else t
    entered = {cid for cid, created in mains if aware(created) > now - 365 * DAY}
    today = sum(1 for _, created in mains if aware(created) >= now.replace(hour=0, minute=0, second=0, microsecond=0))
    newest = now - dormant_days * DAY
    oldest = newest - 7 * DAY
    ranked = sorted(((t, oid, cid) for cid, (t, oid) in last.items() if cid not in entered and t <= newest),
                    reverse=True)
    main = [(cid, oid, False) for t, oid, cid in ranked if t > oldest]
    older = [(cid, oid, True) for t, oid, cid in ranked if t <= oldest]
    return main + older[:max(cap - today - len(main), 0)]


def test_set_based_entries_equal_the_full_computation_after_orders_cancellations_and_settings(ctx):
    rng = random.Random(1516)
    now = ctx.clock.now().replace(hour=6)
    ctx.clock.set(now)
    with ctx.database.session() as s:
        st = f.store(s)
        other = f.store(s, name="Other")
        customers = [f.customer(s, st.id) for _ in range(150)]
        for c in customers:
            times = [now - timedelta(days=rng.uniform(150, 420), minutes=rng.randint(0, 900))
                     for _ in range(rng.randint(1, 4))]
            if rng.random() < 0.1:
                times.append(times[0])  # two orders at the same moment: the higher id is the last
            for when in times:
                f.order(s, st.id, c.id, when, cancelled_at=when if rng.random() < 0.1 else None)
        f.order(s, other.id, f.customer(s, other.id).id, now - 181 * DAY)
        f.order(s, st.id, None, now - 182 * DAY)  # a guest order: no customer to win back
        flow_settings.update(s, ctx.config, st.id, "winback", {"backfill_enabled": True, "backfill_daily_cap": 40})
        sid = st.id
    expected = _full_computation(ctx, sid, 180, 40)
    assert len([e for e in expected if not e[2]]) >= 3 and len(expected) == 40
    assert _due(ctx, sid) == expected
    assert _run(ctx, sid)["entered"] == 40

    # A day later: some customers order again, some lose their last order to a cancellation (their dormancy
    # moment moves back), and the merchant shortens the dormancy to 150 days.
    ctx.clock.advance(days=1)
    with ctx.database.session() as s:
        for c in rng.sample(customers, 30):
            f.order(s, sid, c.id, ctx.clock.now() - timedelta(hours=rng.randint(1, 20)))
        for c in rng.sample(customers, 30):
            newest = s.scalars(select(Order).where(Order.customer_id == c.id, Order.cancelled_at.is_(None))
                               .order_by(Order.created_at_remote.desc(), Order.id.desc())).first()
            if newest is not None:
                newest.cancelled_at = ctx.clock.now()
    expected = _full_computation(ctx, sid, 180, 40)
    assert expected and _due(ctx, sid) == expected
    with ctx.database.session() as s:
        flow_settings.update(s, ctx.config, sid, "winback", {"dormant_after_days": 150, "backfill_daily_cap": 25})
    expected = _full_computation(ctx, sid, 150, 25)
    assert len(expected) == 25 and _due(ctx, sid) == expected
    # Backfill off: only the newly dormant, whatever the cap.
    with ctx.database.session() as s:
        flow_settings.update(s, ctx.config, sid, "winback", {"backfill_enabled": False})
    newly = [e for e in _full_computation(ctx, sid, 150, 10**6) if not e[2]]
    assert newly and _due(ctx, sid) == newly
