"""First-order welcome and cancellation follow-up over the Shopify sandbox: real HTTP both ways.

The shop is synced from the sandbox (its history, its contact address and refund policy), new orders and
cancellations arrive by signed webhooks (orders/create, orders/cancelled with Shopify's cancel reason), the flows
run, the dispatcher sends through a real SMTP server, and the customer answers on the signed cancellation page.
Who gets what is computed from the sandbox's own objects, not from the code under test.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select

from base.clock import FrozenClock
from jobs.webhooks import process_pending
from plugin.context import JobContext
from plugin.flows import runner
from plugin.messaging.dispatch import dispatch_due
from plugin.models import CancellationAnswer, Customer, Message, Order, Store, Ticket
from plugin.sync.store_run import sync_store
from sandbox.smtp import SmtpSandbox
from tests.shopify_app_env import shopify_env

HOUR, DAY = timedelta(hours=1), timedelta(days=1)
BASE_URL = "https://aftercare.test"
SHIPPED = {"en", "de", "fr", "es", "it", "pt-BR", "ja", "zh-Hans", "zh-Hant", "ar"}
LANG = {"zh-CN": "zh-Hans", "zh-TW": "zh-Hant"}
# The seeded refund policy's body in plain words, worked out by hand from sandbox/shopify/seed.py's HTML.
REFUND_SUMMARY = ("Returns You can return any unused item within 30 days of delivery for a full refund. Start a "
                  "return by replying to your order email; we send a prepaid label. Refunds go back to the original "
                  "payment method within 5 business days of the return arriving.")


def _ctx(env, smtp: SmtpSandbox, clock: FrozenClock) -> JobContext:
    return JobContext.from_app(env.app, sleep=lambda seconds: clock.advance(seconds=seconds),
                               extras={"smtp_url": f"smtp://127.0.0.1:{smtp.port}", "base_url": BASE_URL,
                                       "bulk_poll_interval": 1.0})


def _first_orders(store, ready):
    """Sandbox orders placed in (ready - 3 days, ready], not cancelled, with no earlier order not cancelled."""
    out = set()
    for o in store.orders:
        if o.customer_id is None or o.cancelled_at is not None or not ready - 3 * DAY < o.created_at <= ready:
            continue
        if not any(e.id != o.id and e.cancelled_at is None and e.created_at < o.created_at
                   for e in store.customer_orders(o.customer_id)):
            out.add(str(o.id))
    return out


def _cancelled(store, reason, ready):
    return {str(o.id) for o in store.orders if o.customer_id is not None and o.cancel_reason == reason
            and o.cancelled_at is not None and ready - 3 * DAY < o.cancelled_at <= ready}


def _rows(env, flow):
    with env.app.extensions["aftercare.db"].session() as s:
        return {(m.step, s.get(Order, m.order_id).external_id): (m.status, m.skip_reason, m.id)
                for m in s.scalars(select(Message).where(Message.flow == flow))}


def test_welcome_and_cancellation_follow_up_from_sync_and_webhooks(database_url: str, tmp_path: Path,
                                                                   clock: FrozenClock, smtp: SmtpSandbox) -> None:
    with shopify_env(database_url, tmp_path, clock, customers=40, orders=60) as env:
        store_id = env.install()
        ctx = _ctx(env, smtp, clock)
        assert sync_store(ctx, store_id, full=True)["status"] == "ok"
        shop = env.sandbox.store
        domain = shop.shop.domain
        with env.app.extensions["aftercare.db"].session() as s:
            stored = s.get(Store, store_id)
            # The shop's contact address and refund policy, as the Admin API states them.
            assert stored.contact_email == f"owner@{domain.split('.')[0]}.example.com"
            assert stored.shop_policies["REFUND_POLICY"] == {
                "title": "Refund policy", "url": f"https://{domain}/policies/refund-policy",
                "summary": REFUND_SUMMARY}
        new = [c for c in shop.customers if not shop.customer_orders(c.id) and c.email]
        repeat = [c for c in shop.customers if shop.customer_orders(c.id) and c.email]
        assert len(new) >= 2 and len(repeat) >= 7
        variant = shop.products[0].variants[0].id
        first = env.sandbox.add_order(new[0].id, [(variant, 1)])
        fraud_first = env.sandbox.add_order(new[1].id, [(variant, 1)])
        again = env.sandbox.add_order(repeat[0].id, [(variant, 2)])
        by_reason = {}
        for customer, reason in zip(repeat[1:7], ("CUSTOMER", "DECLINED", "INVENTORY", "STAFF", "OTHER", "CUSTOMER"),
                                    strict=True):
            order = env.sandbox.add_order(customer.id, [(variant, 1)])
            by_reason.setdefault(reason, []).append(order)
        clock.advance(minutes=20)
        env.sandbox.cancel_order(fraud_first.id, reason="FRAUD")
        for reason, orders in by_reason.items():
            for order in orders:
                env.sandbox.cancel_order(order.id, reason=reason)
        process_pending(ctx)
        with env.app.extensions["aftercare.db"].session() as s:
            stored_reasons = dict(s.execute(select(Order.external_id, Order.cancel_reason)
                                            .where(Order.store_id == store_id)).all())
        # Every order's cancel reason came through (sync and webhooks), the REST body's lower case read as the enum.
        assert stored_reasons == {str(o.id): o.cancel_reason for o in shop.orders}

        clock.advance(hours=3)
        now = clock.now()
        welcome = runner.run_first_order(ctx, store_id)
        asked = runner.run_cancellation(ctx, store_id)
        expected_welcome = _first_orders(shop, now - 2 * HOUR)
        expected_ask = _cancelled(shop, "CUSTOMER", now - HOUR)
        expected_declined = _cancelled(shop, "DECLINED", now - HOUR)
        assert str(first.id) in expected_welcome and str(again.id) not in expected_welcome
        assert str(fraud_first.id) not in expected_welcome
        assert {str(o.id) for o in by_reason["CUSTOMER"]} <= expected_ask
        welcomes = _rows(env, "first_order")
        assert {ext for _step, ext in welcomes} == expected_welcome
        assert welcome == {"welcomes": len(expected_welcome), "skipped": 0}
        cancels = _rows(env, "cancellation")
        assert {ext for step, ext in cancels if step == "ask"} == expected_ask
        assert {ext for step, ext in cancels if step == "declined"} == expected_declined
        # Never after fraud, inventory, staff or other cancellations.
        never = {str(o.id) for r in ("INVENTORY", "STAFF", "OTHER") for o in by_reason[r]} | {str(fraud_first.id)}
        assert not never & {ext for _step, ext in cancels}
        assert asked == {"questions": len(expected_ask), "declined": len(expected_declined), "skipped": 0}
        assert runner.run_first_order(ctx, store_id) == {"welcomes": 0, "skipped": 0}  # a rerun writes nothing

        # Dispatch hour by hour for two days: every email leaves inside the customer's local window, in their language.
        for _ in range(48):
            dispatch_due(ctx)
            clock.advance(hours=1)
        with env.app.extensions["aftercare.db"].session() as s:
            sent = [(m, s.get(Customer, m.customer_id)) for m in s.scalars(
                select(Message).where(Message.flow.in_(("first_order", "cancellation"))))]
            store_zone = s.get(Store, store_id).timezone
        assert sent and all(m.status == "sent" for m, _c in sent)
        by_id = {received.message_id: received for received in smtp.messages}
        for m, customer in sent:
            received = by_id[m.provider_id]
            assert received.envelope_to == (customer.email,)
            local = m.sent_at.astimezone(ZoneInfo(customer.time_zone or store_zone))
            assert 9 <= local.hour < 11, (m.flow, local)
            html = received.message.get_body(("html",)).get_content()
            wanted = LANG.get(customer.locale, customer.locale)
            assert re.search(r'<html lang="([^"]+)"', html).group(1) == (wanted if wanted in SHIPPED else "en")
            assert "discount" not in html.lower() and "%" not in received.message["Subject"]
            if m.flow == "first_order":
                assert f"https://{domain}/policies/refund-policy" in html
            elif m.step == "ask":
                assert len(re.findall(r'href="https://aftercare\.test/c/[^"]+"', html)) == 5
            else:
                assert f'href="https://{domain}"' in html

        # The customer answers in one click: stored, and "delivery too slow" opens a ticket; a second click
        # (a mail scanner, or a change of mind) does not overwrite it.
        [ask_id] = [m.id for m, _c in sent if m.step == "ask" and
                    _order_ext(env, m.order_id) == str(by_reason["CUSTOMER"][0].id)]
        html = by_id[next(m.provider_id for m, _c in sent if m.id == ask_id)].message.get_body(("html",)).get_content()
        links = re.findall(r'href="https://aftercare\.test(/c/[^"]+)"', html)
        slow = next(path for path in links if _reason_of(env, path) == "delivery_too_slow")
        cheaper = next(path for path in links if _reason_of(env, path) == "found_cheaper")
        client = env.app.test_client()
        assert client.get(slow).status_code == 200
        assert client.get(cheaper).status_code == 200
        with env.app.extensions["aftercare.db"].session() as s:
            [answer] = s.scalars(select(CancellationAnswer)).all()
            ticket = s.get(Ticket, answer.ticket_id)
            assert (answer.reason, answer.message_id) == ("delivery_too_slow", ask_id)
            assert (ticket.source, ticket.severity, ticket.status, ticket.order_id) == (
                "cancellation", 3, "open", s.get(Message, ask_id).order_id)
        assert client.get(slow[:-3] + "xyz").status_code == 400  # a forged token changes nothing


def _order_ext(env, order_id):
    with env.app.extensions["aftercare.db"].session() as s:
        return s.get(Order, order_id).external_id


def _reason_of(env, path):
    from plugin.messaging import links
    config = env.app.config["AFTERCARE"]
    return links.read_token(config.secrets.secret_key, env.clock, "cancel_reason", path.rsplit("/", 1)[-1])["r"]
