"""Review requests: timing, fallback, skips with reasons, ticket wait, no gating, one reminder."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from plugin.flows import runner
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
