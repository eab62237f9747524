"""After a reinstall no flow messages about an order fulfilled or delivered before it, unless the merchant chose to."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from plugin import flow_settings
from plugin.flows import runner
from plugin.models import Message
from tests.jobs import factory as f

DAY = timedelta(days=1)


def _rows(ctx) -> set[tuple[int, str, str]]:
    with ctx.database.session() as s:
        return {(m.order_id, m.flow, m.step) for m in s.scalars(select(Message).where(Message.status == "scheduled"))}


def _choose(ctx, store_id: int, on: bool) -> None:
    with ctx.database.session() as s:
        flow_settings.update(s, ctx.config, store_id, "policy", {"message_orders_before_reinstall": on})


def _store_reinstalled_15_days_ago(ctx):
    """Orders around a reinstall 15 days ago, and two requests sent before the uninstall (the log survived)."""
    now = ctx.clock.now()
    cutoff = now - 15 * DAY
    with ctx.database.session() as s:
        st = f.store(s, installed_at=cutoff, reinstalled_at=cutoff)
        c = f.customer(s, st.id)
        # Fulfilled before the reinstall, delivered after it: it may have been asked already (fallback).
        shipped_before = f.order(s, st.id, c.id, now - 20 * DAY, fulfilled_at=cutoff - DAY,
                                 delivered_at=now - 13 * DAY)
        delivered_before = f.order(s, st.id, c.id, now - 20 * DAY, fulfilled_at=cutoff - 3 * DAY,
                                   delivered_at=cutoff - timedelta(hours=1))
        after = f.order(s, st.id, c.id, now - 20 * DAY, fulfilled_at=cutoff + timedelta(hours=12),
                        delivered_at=now - 12 * DAY)
        for order in (delivered_before, after):
            s.add(Message(store_id=st.id, flow="review_request", step="main", channel="email",
                          idempotency_key=f"{st.id}:review_request:order={order.id}:step=main", order_id=order.id,
                          customer_id=c.id, to_address=c.email, status="sent", scheduled_for=now - 8 * DAY,
                          sent_at=now - 8 * DAY, created_at=now - 8 * DAY, updated_at=now - 8 * DAY))
        return st.id, shipped_before.id, delivered_before.id, after.id


def test_review_requests_reminders_and_surveys_skip_orders_from_before_the_reinstall(ctx):
    sid, shipped_before, delivered_before, after = _store_reinstalled_15_days_ago(ctx)
    assert runner.run_review_request(ctx, sid) == {"requests": 0, "reminders": 1, "skipped": 0}
    assert runner.run_survey(ctx, sid)["surveys"] == 1
    assert _rows(ctx) == {(after, "review_request", "reminder"), (after, "survey", "main")}
    assert shipped_before and delivered_before


def test_the_merchants_choice_brings_the_older_orders_back(ctx):
    sid, shipped_before, delivered_before, after = _store_reinstalled_15_days_ago(ctx)
    _choose(ctx, sid, True)
    assert runner.run_review_request(ctx, sid) == {"requests": 1, "reminders": 2, "skipped": 0}
    assert runner.run_survey(ctx, sid)["surveys"] == 3
    assert _rows(ctx) == {(shipped_before, "review_request", "main"),
                          (delivered_before, "review_request", "reminder"), (after, "review_request", "reminder"),
                          (shipped_before, "survey", "main"), (delivered_before, "survey", "main"),
                          (after, "survey", "main")}


def test_replenishment_reminds_only_about_purchases_after_the_reinstall(ctx):
    now = ctx.clock.now()
    cutoff = now - 10 * DAY
    with ctx.database.session() as s:
        st = f.store(s, installed_at=cutoff, reinstalled_at=cutoff)
        soap = f.product(s, st.id, days_of_supply=30)
        old, new = f.customer(s, st.id), f.customer(s, st.id)
        # Both run out in 5 days (30 days of supply, lead 7: reminder due now).
        before = f.order(s, st.id, old.id, now - 25 * DAY, lines=[(soap.id, 1)], fulfilled_at=now - 24 * DAY)
        since = f.order(s, st.id, new.id, now - 25 * DAY, lines=[(soap.id, 1)], fulfilled_at=now - 9 * DAY)
        sid = st.id
    assert runner.run_replenishment(ctx, sid) == {"cancelled": 0, "planned": 1, "not_sent": 0}
    assert _rows(ctx) == {(since.id, "replenishment", "main")}
    _choose(ctx, sid, True)
    assert runner.run_replenishment(ctx, sid) == {"cancelled": 0, "planned": 1, "not_sent": 0}
    assert _rows(ctx) == {(since.id, "replenishment", "main"), (before.id, "replenishment", "main")}


def test_a_first_install_keeps_the_age_limit_alone(ctx):
    now = ctx.clock.now()
    with ctx.database.session() as s:
        st = f.store(s, installed_at=now - DAY)
        c = f.customer(s, st.id)
        backfilled = f.order(s, st.id, c.id, now - 20 * DAY, fulfilled_at=now - 15 * DAY, delivered_at=now - 12 * DAY)
        sid = st.id
    assert runner.run_review_request(ctx, sid)["requests"] == 1
    assert runner.run_survey(ctx, sid)["surveys"] == 1
    assert _rows(ctx) == {(backfilled.id, "review_request", "main"), (backfilled.id, "survey", "main")}
