"""Adversarial review (batch 3): a delivery problem holds the review request and the survey, never drops them
(DESIGN §1 "no review gating", §4 "the request waits and goes out once the ticket is resolved").

The flow runner's job functions, the dispatcher and the SMTP sandbox on loopback; the clock is injected.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Flask
from sqlalchemy import select

from plugin.context import JobContext
from plugin.flows import runner
from plugin.messaging.dispatch import dispatch_due
from plugin.models import Message
from plugin.tickets import open_ticket, resolve_ticket
from sandbox.smtp import SmtpSandbox
from tests.messaging import seed

BASE_URL = "https://aftercare.test"
DAY = timedelta(days=1)
# Delivered Monday 2026-02-02 09:30 UTC: every "N days later" lands at 09:30 London, inside the send window.
DELIVERED = datetime(2026, 2, 2, 9, 30, tzinfo=UTC)


def _ctx(app: Flask, smtp: SmtpSandbox) -> JobContext:
    return JobContext.from_app(app, sleep=lambda _s: None,
                               extras={"smtp_url": f"smtp://127.0.0.1:{smtp.port}", "base_url": BASE_URL})


def _sent(app: Flask, flow: str) -> dict[int, int]:
    with app.extensions["aftercare.db"].session() as s:
        rows = s.scalars(select(Message).where(Message.flow == flow, Message.step == "main",
                                               Message.status == "sent")).all()
        out: dict[int, int] = {}
        for m in rows:
            out[m.customer_id] = out.get(m.customer_id, 0) + 1
        return out


def _run(app: Flask, smtp: SmtpSandbox, store_id: int, when: datetime) -> None:
    ctx = _ctx(app, smtp)
    runner.run_review_request(ctx, store_id)
    runner.run_survey(ctx, store_id)
    dispatch_due(ctx)


def test_a_delivery_problem_delays_the_review_request_and_survey_and_never_drops_them(app, clock, smtp) -> None:
    """Two customers, same delivery; one has a delivery ticket open from day 1 to day 45 (past the 30-day age limit).
    Both are asked for a review and surveyed exactly once; the one with the problem after its resolution."""
    with app.extensions["aftercare.db"].session() as s:
        shop = seed.store(s, protected_data_access=True)
        calm, troubled = seed.customer(s, shop, 1), seed.customer(s, shop, 2)
        for n, customer in ((1, calm), (2, troubled)):
            seed.order(s, shop, customer, n).delivered_at = DELIVERED
        store_id, calm_id, troubled_id = shop.id, calm.id, troubled.id
        ticket = open_ticket(s, app.config["AFTERCARE"], store_id=store_id, source="delivery", severity=3,
                             subject="parcel stuck", now=DELIVERED + DAY, customer_id=troubled_id)
        ticket_id = ticket.id
    for day in (7, 10, 20, 40):
        clock.set(DELIVERED + day * DAY)
        _run(app, smtp, store_id, clock.now())
    assert _sent(app, "review_request") == {calm_id: 1}
    assert _sent(app, "survey") == {calm_id: 1}
    assert smtp.messages_to("c2@example.com") == []
    clock.set(DELIVERED + 45 * DAY)
    with app.extensions["aftercare.db"].session() as s:
        resolve_ticket(s, ticket_id, "The carrier found the parcel and delivered it.", clock.now())
    for hours in (0, 6, 12, 24, 48):
        clock.set(DELIVERED + 45 * DAY + timedelta(hours=hours))
        _run(app, smtp, store_id, clock.now())
    assert _sent(app, "review_request") == {calm_id: 1, troubled_id: 1}
    assert _sent(app, "survey") == {calm_id: 1, troubled_id: 1}
