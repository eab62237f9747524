"""Review requests: timing, fallback, skips with reasons, ticket wait, no gating, one reminder."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from plugin.flows import amazon_review_request, runner
from plugin.models import Message, SurveyResponse
from plugin.tickets import open_ticket, resolve_ticket
from tests.jobs import factory as f


def _messages(ctx):
    with ctx.database.session() as s:
        return {(m.order_id, m.step): (m.status, m.skip_reason)
                for m in s.scalars(select(Message).where(Message.flow == "review_request"))}


def test_due_orders_get_one_request_and_skips_keep_reasons(ctx):
    now = ctx.clock.now()
    day = timedelta(days=1)
    with ctx.database.session() as s:
        st = f.store(s)
        c = f.customer(s, st.id)
        nomail = f.customer(s, st.id, email=None)
        due = f.order(s, st.id, c.id, now - 20 * day, delivered_at=now - 7 * day)
        early = f.order(s, st.id, c.id, now - 20 * day, delivered_at=now - 6 * day)
        fallback = f.order(s, st.id, c.id, now - 20 * day, fulfilled_at=now - 7 * day - timedelta(hours=1))
        fallback_early = f.order(s, st.id, c.id, now - 20 * day, fulfilled_at=now - 6 * day)
        cancelled = f.order(s, st.id, c.id, now - 20 * day, delivered_at=now - 8 * day, cancelled_at=now - 2 * day)
        refunded = f.order(s, st.id, c.id, now - 20 * day, delivered_at=now - 8 * day, refunded=True)
        returned = f.order(s, st.id, c.id, now - 20 * day, delivered_at=now - 8 * day, returned=True)
        no_contact = f.order(s, st.id, nomail.id, now - 20 * day, delivered_at=now - 9 * day)
        too_old = f.order(s, st.id, c.id, now - 90 * day, delivered_at=now - 60 * day)
        sid = st.id
    counts = runner.run_review_request(ctx, sid)
    assert counts == {"requests": 2, "reminders": 0, "skipped": 4}
    assert _messages(ctx) == {
        (due.id, "main"): ("scheduled", None),
        (fallback.id, "main"): ("scheduled", None),
        (cancelled.id, "main"): ("skipped", "order_cancelled"),
        (refunded.id, "main"): ("skipped", "order_refunded"),
        (returned.id, "main"): ("skipped", "order_returned"),
        (no_contact.id, "main"): ("skipped", "no_contact_access"),
    }
    assert early.id and fallback_early.id and too_old.id
    # Idempotent: a second run (e.g. a retry after a crash) writes nothing.
    assert runner.run_review_request(ctx, sid) == {"requests": 0, "reminders": 0, "skipped": 0}
    with ctx.database.session() as s:
        m = s.scalar(select(Message).where(Message.order_id == due.id))
        assert (m.channel, m.marketing, m.to_address, m.locale) == ("email", False, c.email, "en")
        assert m.idempotency_key == f"{sid}:review_request:order={due.id}:step=main"


def test_open_complaint_waits_then_request_goes_after_resolution(ctx):
    now = ctx.clock.now()
    with ctx.database.session() as s:
        st = f.store(s)
        c = f.customer(s, st.id)
        o = f.order(s, st.id, c.id, now - timedelta(days=15), delivered_at=now - timedelta(days=8))
        t = open_ticket(s, ctx.config, store_id=st.id, source="manual", severity=2, subject="broken", now=now,
                        customer_id=c.id)
        sid, tid = st.id, t.id
    assert runner.run_review_request(ctx, sid)["requests"] == 0
    assert _messages(ctx) == {}
    ctx.clock.advance(hours=5)
    with ctx.database.session() as s:
        resolve_ticket(s, tid, "sent a replacement", ctx.clock.now())
    assert runner.run_review_request(ctx, sid)["requests"] == 1
    assert _messages(ctx) == {(o.id, "main"): ("scheduled", None)}


def test_no_review_gating_detractor_and_one_star_still_asked(ctx):
    now = ctx.clock.now()
    with ctx.database.session() as s:
        st = f.store(s)
        c = f.customer(s, st.id)
        earlier = f.order(s, st.id, c.id, now - timedelta(days=60), delivered_at=now - timedelta(days=50))
        s.add(SurveyResponse(store_id=st.id, order_id=earlier.id, customer_id=c.id, kind="nps", score=0,
                             comment="terrible", answered_at=now - timedelta(days=40)))
        f.review(s, st.id, rating=1, created=now - timedelta(days=40), order_id=earlier.id, customer_id=c.id,
                 body="awful", reply_status="draft")
        o = f.order(s, st.id, c.id, now - timedelta(days=12), delivered_at=now - timedelta(days=7))
        sid = st.id
    runner.run_review_request(ctx, sid)
    assert _messages(ctx)[(o.id, "main")] == ("scheduled", None)


def test_one_reminder_unless_a_review_arrived(ctx):
    now = ctx.clock.now()
    day = timedelta(days=1)
    with ctx.database.session() as s:
        st = f.store(s)
        a, b, c = (f.customer(s, st.id) for _ in range(3))
        oa = f.order(s, st.id, a.id, now - 30 * day, delivered_at=now - 14 * day)
        ob = f.order(s, st.id, b.id, now - 30 * day, delivered_at=now - 14 * day)
        oc = f.order(s, st.id, c.id, now - 30 * day, delivered_at=now - 14 * day)
        sid = st.id
    ctx.clock.set(now - 7 * day)
    runner.run_review_request(ctx, sid)
    with ctx.database.session() as s:
        for m in s.scalars(select(Message)):
            m.status, m.sent_at = "sent", now - 7 * day + timedelta(hours=1)
        # b reviewed the product of that order; c reviewed through another order since the request
        f.review(s, sid, rating=5, created=now - 3 * day, order_id=ob.id, customer_id=b.id)
        f.review(s, sid, rating=4, created=now - 2 * day, customer_id=c.id)
    ctx.clock.set(now + timedelta(hours=1))
    assert runner.run_review_request(ctx, sid) == {"requests": 0, "reminders": 1, "skipped": 0}
    got = _messages(ctx)
    assert got[(oa.id, "reminder")] == ("scheduled", None)
    assert (ob.id, "reminder") not in got and (oc.id, "reminder") not in got
    with ctx.database.session() as s:
        for m in s.scalars(select(Message).where(Message.step == "reminder")):
            m.status, m.sent_at = "sent", ctx.clock.now()
    ctx.clock.advance(days=8)
    assert runner.run_review_request(ctx, sid) == {"requests": 0, "reminders": 0, "skipped": 0}


def _sent(ctx, step: str) -> None:
    """Mark the scheduled rows of a step sent now (what the dispatcher records)."""
    with ctx.database.session() as s:
        for m in s.scalars(select(Message).where(Message.flow == "review_request", Message.step == step,
                                                 Message.status == "scheduled")):
            m.status, m.sent_at = "sent", ctx.clock.now()


def test_a_request_held_past_the_age_limit_goes_after_resolution_with_its_reminder(ctx):
    """Held by a delivery problem from its due day (+7) to +60: asked the day after resolution, reminded 7 days
    after that (a delivery problem holds until resolved; other tickets at most complaint_hold_days)."""
    start = ctx.clock.now()
    day = timedelta(days=1)
    with ctx.database.session() as s:
        st = f.store(s)
        held, calm = f.customer(s, st.id), f.customer(s, st.id)
        held_order = f.order(s, st.id, held.id, start - 5 * day, delivered_at=start)
        calm_order = f.order(s, st.id, calm.id, start - 5 * day, delivered_at=start)
        # Aged out (due at -93, limit -63) long before the ticket opened: the ticket never held it.
        aged_out = f.order(s, st.id, held.id, start - 110 * day, delivered_at=start - 100 * day)
        ticket = open_ticket(s, ctx.config, store_id=st.id, source="delivery", severity=2, subject="stuck",
                             now=start + 3 * day, customer_id=held.id)
        sid, tid = st.id, ticket.id
    for n in range(7, 61):  # the flow runs every day
        ctx.clock.set(start + n * day)
        runner.run_review_request(ctx, sid)
        _sent(ctx, "main")
        _sent(ctx, "reminder")
    assert _messages(ctx) == {(calm_order.id, "main"): ("sent", None), (calm_order.id, "reminder"): ("sent", None)}
    ctx.clock.set(start + 60 * day + timedelta(hours=2))
    with ctx.database.session() as s:
        resolve_ticket(s, tid, "sent a replacement", ctx.clock.now())
    ctx.clock.set(start + 61 * day)
    assert runner.run_review_request(ctx, sid) == {"requests": 1, "reminders": 0, "skipped": 0}
    _sent(ctx, "main")
    for n in range(62, 68):
        ctx.clock.set(start + n * day)
        assert runner.run_review_request(ctx, sid) == {"requests": 0, "reminders": 0, "skipped": 0}
    ctx.clock.set(start + 68 * day)
    assert runner.run_review_request(ctx, sid) == {"requests": 0, "reminders": 1, "skipped": 0}
    _sent(ctx, "reminder")
    assert _messages(ctx) == {(calm_order.id, "main"): ("sent", None), (calm_order.id, "reminder"): ("sent", None),
                              (held_order.id, "main"): ("sent", None), (held_order.id, "reminder"): ("sent", None)}
    assert aged_out.id not in {order_id for order_id, _step in _messages(ctx)}
    ctx.clock.set(start + 120 * day)
    assert runner.run_review_request(ctx, sid) == {"requests": 0, "reminders": 0, "skipped": 0}


def test_a_complaint_left_open_holds_the_request_for_14_days_only(ctx):
    """A ticket opened at +3 and never resolved holds a request due at +7 until +17 (the ticket 14 days old), for
    every source but delivery problems: asked then, reminded 7 days later, the calm customer on time throughout."""
    start = ctx.clock.now()
    day = timedelta(days=1)
    for source in ("manual", "survey", "review", "feedback", "cancellation"):
        with ctx.database.session() as s:
            st = f.store(s)
            held, calm = f.customer(s, st.id), f.customer(s, st.id)
            held_order = f.order(s, st.id, held.id, start - 5 * day, delivered_at=start)
            calm_order = f.order(s, st.id, calm.id, start - 5 * day, delivered_at=start)
            open_ticket(s, ctx.config, store_id=st.id, source=source, severity=2, subject="broken",
                        now=start + 3 * day, customer_id=held.id)
            sid = st.id
        busy = {}
        for n in range(7, 40):
            ctx.clock.set(start + n * day)
            counts = runner.run_review_request(ctx, sid)
            if counts["requests"] or counts["reminders"]:
                busy[n] = (counts["requests"], counts["reminders"])
            with ctx.database.session() as s:
                for m in s.scalars(select(Message).where(Message.store_id == sid, Message.status == "scheduled")):
                    m.status, m.sent_at = "sent", ctx.clock.now()
        assert busy == {7: (1, 0), 14: (0, 1), 17: (1, 0), 24: (0, 1)}, source
        with ctx.database.session() as s:
            got = {(m.order_id, m.step) for m in s.scalars(select(Message).where(Message.store_id == sid))}
        assert got == {(o, step) for o in (held_order.id, calm_order.id) for step in ("main", "reminder")}
        ctx.clock.set(start)


def test_a_held_reminder_goes_after_a_late_resolution(ctx):
    """The request went out before a delivery problem; the reminder it held is sent after the resolution at +45."""
    start = ctx.clock.now()
    day = timedelta(days=1)
    with ctx.database.session() as s:
        st = f.store(s)
        c = f.customer(s, st.id)
        o = f.order(s, st.id, c.id, start - 5 * day, delivered_at=start)
        sid = st.id
    ctx.clock.set(start + 7 * day)
    assert runner.run_review_request(ctx, sid)["requests"] == 1
    _sent(ctx, "main")
    with ctx.database.session() as s:
        tid = open_ticket(s, ctx.config, store_id=sid, source="delivery", severity=3, subject="late",
                          now=start + 9 * day, customer_id=c.id).id
    ctx.clock.set(start + 14 * day)
    assert runner.run_review_request(ctx, sid)["reminders"] == 0
    ctx.clock.set(start + 45 * day)
    with ctx.database.session() as s:
        resolve_ticket(s, tid, "refunded the shipping", ctx.clock.now())
    ctx.clock.advance(hours=1)
    assert runner.run_review_request(ctx, sid) == {"requests": 0, "reminders": 1, "skipped": 0}
    assert _messages(ctx) == {(o.id, "main"): ("sent", None), (o.id, "reminder"): ("scheduled", None)}


def test_a_request_held_and_resolved_early_keeps_its_schedule(ctx):
    """Resolved inside the age limit: asked at the next run, once; reminder 7 days after the send, once."""
    start = ctx.clock.now()
    day = timedelta(days=1)
    with ctx.database.session() as s:
        st = f.store(s)
        c = f.customer(s, st.id)
        o = f.order(s, st.id, c.id, start - 5 * day, delivered_at=start)
        tid = open_ticket(s, ctx.config, store_id=st.id, source="manual", severity=2, subject="broken",
                          now=start + day, customer_id=c.id).id
        sid = st.id
    counts = []
    for n in range(7, 40):
        ctx.clock.set(start + n * day)
        if n == 12:
            with ctx.database.session() as s:
                resolve_ticket(s, tid, "sent a replacement", ctx.clock.now() - timedelta(hours=1))
        got = runner.run_review_request(ctx, sid)
        counts.append((n, got["requests"], got["reminders"]))
        _sent(ctx, "main")
        _sent(ctx, "reminder")
    assert [c for c in counts if c[1] or c[2]] == [(12, 1, 0), (19, 0, 1)]
    assert _messages(ctx) == {(o.id, "main"): ("sent", None), (o.id, "reminder"): ("sent", None)}


def test_a_resolved_ticket_does_not_extend_amazons_solicitation_window(ctx):
    """Amazon's window is Amazon's: an open ticket neither holds a solicitation nor reopens a closed window."""
    start = ctx.clock.now()
    day = timedelta(days=1)
    with ctx.database.session() as s:
        st = f.store(s, platform="amazon")
        buyer = f.customer(s, st.id, email=None)
        closed = f.order(s, st.id, buyer.id, start - 50 * day, earliest_delivery_at=start - 45 * day,
                         latest_delivery_at=start - 40 * day, marketplace_id="ATVPDKIKX0DER")
        tid = open_ticket(s, ctx.config, store_id=st.id, source="feedback", severity=2, subject="damaged",
                          now=start - 44 * day, customer_id=buyer.id).id
        open_ = f.order(s, st.id, buyer.id, start - 12 * day, earliest_delivery_at=start - 8 * day,
                        latest_delivery_at=start - 6 * day, marketplace_id="ATVPDKIKX0DER")
        sid = st.id
    with ctx.database.session() as s:
        # The ticket is open: the order inside its window is planned all the same (no selective solicitation).
        assert amazon_review_request.plan(s, sid, ctx.clock.now(), 0) == 1
        resolve_ticket(s, tid, "replaced", ctx.clock.now())
    ctx.clock.advance(hours=1)
    with ctx.database.session() as s:
        assert amazon_review_request.plan(s, sid, ctx.clock.now(), 0) == 0
        planned = {m.order_id for m in s.scalars(select(Message).where(Message.store_id == sid))}
    assert planned == {open_.id}
    assert closed.id not in planned
    assert runner.run_review_request(ctx, sid) == {"inactive": 1}
