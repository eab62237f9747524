"""Seller-feedback job over HTTP: reports for every marketplace (US, DE, JP ...) → reviews and tickets."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from plugin.models import Review, SyncState, Ticket
from plugin.sync import amazon_feedback_run as amazon_feedback
from plugin.sync.amazon_run import sync_amazon_store
from sandbox.amazon.marketplaces import DE, JP, US
from sandbox.amazon.seed import FEEDBACK_TEXT, language
from tests.amazon_env import start_env
from tests.conftest import wipe

# Severity of each negative comment of the sandbox, by its position in FEEDBACK_TEXT (damaged, late,
# wrong item, fake, so-so): written here from the texts' meaning, not from the keyword code.
SEVERITY_BY_POSITION = [2, 3, 2, 1, 3]
SLA_HOURS = {1: 1, 2: 24, 3: 72}
FEEDBACK_DAYS = 90


@pytest.fixture(params=[0, 1], ids=["US-CA-EU seller", "DE-FR-JP seller"])
def env(request, database, tmp_path):
    """A sandbox whose seller sells in US/EU (index 0) or DE/FR/JP (index 1); small reports are gzipped too."""
    environment = start_env(database, tmp_path, seller_index=request.param, orders=1500, gzip_threshold=256,
                            amazon_settings={"feedback_days": FEEDBACK_DAYS})
    yield environment
    environment.sandbox.stop()
    wipe(database.engine)


def expected_feedback(env, start, end) -> dict[str, tuple]:
    """From the sandbox's data: order id → (rating, day, comments, language, severity) for 1-3★ feedback."""
    out = {}
    for fb in env.sandbox.feedback:
        if fb.seller_id == env.seller.seller_id and fb.rating <= 3 and start <= fb.date <= end:
            negative = FEEDBACK_TEXT[language(fb.marketplace_id)][0]
            severity = SEVERITY_BY_POSITION[negative.index(fb.comments)] if fb.comments in negative else None
            out[fb.order_id] = (fb.rating, fb.date.date(), fb.comments, language(fb.marketplace_id), severity)
    return out


def stored(env) -> tuple[dict[str, tuple], dict[str, tuple]]:
    with env.database.session() as session:
        reviews = session.scalars(select(Review).where(Review.store_id == env.store_id)).all()
        tickets = {t.review_id: t for t in session.scalars(select(Ticket)).all()}
        by_order = {r.external_id: (r.rating, r.created_at_remote.date(), r.body, r.language,
                                    tickets[r.id].severity if r.id in tickets else None) for r in reviews}
        ticket_rows = {r.external_id: (tickets[r.id].source, tickets[r.id].status,
                                       tickets[r.id].sla_due_at - tickets[r.id].opened_at, tickets[r.id].order_id)
                       for r in reviews if r.id in tickets}
        return by_order, ticket_rows


def test_reports_of_every_marketplace_become_reviews_and_tickets_once(env):
    sync_amazon_store(env.context(), env.store_id)
    # Feedback written in the marketplace languages with known severities, on top of the seeded ones.
    orders = {o.marketplace_id: o for o in env.sandbox.orders_of(env.seller.seller_id)
              if o.delivered_by(env.clock.now())}
    if US in orders:
        env.sandbox.add_feedback(orders[US].order_id, 1, "Counterfeit, not the real brand.",
                                 at=env.clock.now() - timedelta(days=2))
    if JP in orders:
        env.sandbox.add_feedback(orders[JP].order_id, 2, "違う商品が届きました。",
                                 at=env.clock.now() - timedelta(days=1))
    env.sandbox.add_feedback(orders[DE].order_id, 5, "Super!", at=env.clock.now() - timedelta(days=1))
    start = env.clock.now() - timedelta(days=FEEDBACK_DAYS)
    result = amazon_feedback.run(env.context(), env.store_id)
    expected = expected_feedback(env, start, env.clock.now())
    if US in orders:
        expected[orders[US].order_id] = expected[orders[US].order_id][:4] + (1,)
    if JP in orders:
        expected[orders[JP].order_id] = expected[orders[JP].order_id][:4] + (2,)
    assert len(expected) >= 8
    assert result["failed"] == [] and result["marketplaces"] == len(env.seller.marketplace_ids)
    reviews, tickets = stored(env)
    assert reviews == expected
    assert orders[DE].order_id not in reviews  # 4-5 stars are not in the report
    with env.database.session() as session:
        order_ids = {r.external_id: r.order_id for r in session.scalars(select(Review))}
    for order_id, (source, status, sla, linked_order) in tickets.items():
        assert (source, status) == ("feedback", "open")
        assert sla == timedelta(hours=SLA_HOURS[expected[order_id][4]])
        assert linked_order == order_ids[order_id] and linked_order is not None
    assert len(tickets) == len(expected) == result["tickets_opened"]

    # A re-import (overlapping window) updates nothing and opens no second ticket.
    env.clock.advance(hours=12)
    again = amazon_feedback.run(env.context(), env.store_id)
    assert again["reviews_new"] == 0 and again["tickets_opened"] == 0
    assert stored(env) == (reviews, tickets)
    with env.database.session() as session:
        assert session.scalar(select(Ticket.id).where(Ticket.review_id.is_(None))) is None
        cursors = session.scalars(select(SyncState.stream).where(SyncState.last_error.is_(None))).all()
        assert {f"amazon_feedback:{mp}" for mp in env.seller.marketplace_ids} <= set(cursors)


def test_a_failing_marketplace_does_not_stop_the_others(env):
    from plugin.models import Store

    with env.database.session() as session:
        store = session.get(Store, env.store_id)
        # The seller left a marketplace after connecting: Amazon refuses reports for it (400 InvalidInput).
        store.marketplace_ids = [*env.seller.marketplace_ids, "APJ6JRA9NG5V4" if JP in env.seller.marketplace_ids
                                 else JP]
    env.sandbox.set_faults(0.15, seed=5)
    outcome = amazon_feedback.run(env.context(), env.store_id)
    env.sandbox.set_faults(0.0)
    assert outcome["failed"] == [store.marketplace_ids[-1]]
    assert outcome["marketplaces"] == len(env.seller.marketplace_ids)
    expected = expected_feedback(env, env.clock.now() - timedelta(days=FEEDBACK_DAYS), env.clock.now())
    reviews, tickets = stored(env)
    assert reviews == expected and len(tickets) == len(expected)
    with env.database.session() as session:
        failed = session.scalar(select(SyncState).where(
            SyncState.stream == f"amazon_feedback:{store.marketplace_ids[-1]}"))
        assert failed.cursor is None and "InvalidInput" in failed.last_error
