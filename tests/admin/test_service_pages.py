"""The admin side of the service journey: resolving a ticket (suggested words, the severity-1 remedy), the new
flows on the Flows page with their declared settings, and cancellation reasons and ticket outcomes on the
overview (from the counts the metrics job keeps)."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from jobs.analytics import count_uncounted_store
from plugin import tickets
from plugin.models import CancellationAnswer, Customer, Order, Ticket
from tests.admin.test_pages import _get, _post, _session, _text
from tests.jobs.conftest import make_ctx


def test_resolving_suggests_the_words_and_a_severity_1_ticket_needs_a_remedy(client, tenants, token, app, clock):
    a, _ = tenants
    with _session(app) as s:
        severe = tickets.open_ticket(s, app.config["AFTERCARE"], store_id=a.store_id, source="review", severity=1,
                                     subject="counterfeit", now=clock.now(), customer_id=a.customers[0]).id
    page = _get(client, token, f"/admin/tickets/{severe}").get_data(as_text=True)
    assert tickets.SUGGESTED_SEVERITY_1 in page
    assert re.findall(r'name="remedy" value="(\w+)"', page) == ["refund", "replacement", "compensation", "vip"]
    url = f"/admin/tickets/{severe}/resolve"
    refused = _post(client, token, url, {"resolution": "We changed our supplier."})
    assert refused.status_code == 400 and "needs a remedy" in refused.get_data(as_text=True)
    assert _post(client, token, url, {"resolution": "We changed our supplier.", "remedy": "refund"}).status_code == 200
    with _session(app) as s:
        ticket = s.get(Ticket, severe)
        assert (ticket.status, ticket.remedy, ticket.resolution) == ("resolved", "refund", "We changed our supplier.")
    # A severity-3 ticket offers no remedy and suggests the words of its source.
    normal = _get(client, token, f"/admin/tickets/{a.ticket_id}").get_data(as_text=True)
    assert 'name="remedy"' not in normal


def test_flows_page_lists_the_service_flows_with_their_declared_settings(client, tenants, token):
    page = _text(_get(client, token, "/admin/flows").get_data(as_text=True))
    for title in ("First-order welcome", "Cancellation follow-up", "Complaint follow-through"):
        assert title in page
    detail = _get(client, token, "/admin/flows/cancellation").get_data(as_text=True)
    for name in ("delay_hours", "ask_enabled", "declined_enabled", "ticket_reasons", "holdout_percent"):
        assert f'name="{name}"' in detail
    # The live preview of a service template: the shipped one renders, an offer is refused with the reason.
    form = {"step": "followup", "locale": "en", "subject": "What we changed", "html": "<p>{{ changes }}</p>"}
    assert _post(client, token, "/admin/flows/ticket_followup/preview", form).get_json()["ok"] is True
    answer = _post(client, token, "/admin/flows/ticket_followup/preview",
                   {**form, "html": "<p>{{ changes }} Use code {{ discount_code }}</p>"}).get_json()
    assert answer["ok"] is False and "no offer or recommendation (discount_code" in answer["error"]
    welcome = _get(client, token, "/admin/flows/first_order").get_data(as_text=True)
    assert "what happens next" in welcome.lower() or "Your order confirmation" in welcome


def test_overview_charts_cancellation_reasons_and_ticket_outcomes(client, tenants, token, app, clock, tmp_path):
    a, _ = tenants
    now = clock.now()
    with _session(app) as s:
        orders = s.scalars(select(Order).where(Order.store_id == a.store_id).order_by(Order.id)).all()
        customer = s.scalar(select(Customer).where(Customer.store_id == a.store_id))
        for order, reason in zip(orders[:3], ("CUSTOMER", "CUSTOMER", "FRAUD"), strict=True):
            order.cancelled_at, order.cancel_reason = now - timedelta(days=2), reason
        for order, answer in zip(orders[:2], ("delivery_too_slow", "found_cheaper"), strict=True):
            s.add(CancellationAnswer(store_id=a.store_id, order_id=order.id, customer_id=customer.id,
                                     reason=answer, answered_at=now - timedelta(days=1)))
        amazon_order = s.scalar(select(Order).where(Order.store_id == a.amazon_store_id))
        amazon_order.cancelled_at = now - timedelta(days=3)
    ctx = make_ctx(app.extensions["aftercare.db"], clock, tmp_path)
    count_uncounted_store(ctx, a.store_id)
    count_uncounted_store(ctx, a.amazon_store_id)
    page = _text(_get(client, token, "/admin/").get_data(as_text=True))
    assert "Cancellations and complaints" in page
    assert "Why customers cancelled, last 90 days" in page
    assert "Shopify Customer 2" in page and "Shopify Fraud 1" in page
    assert "Amazon Reason not given 1" in page  # Amazon buyers get no email; the merchant sees the cancellation
    with _session(app) as s:
        opened = {src: n for src, n in [(t.source, 1) for t in s.scalars(select(Ticket).where(
            Ticket.store_id.in_([a.store_id, a.amazon_store_id])))]}
    for source in opened:
        assert re.search(rf"{source.capitalize()} \d+ \d+", page), source
