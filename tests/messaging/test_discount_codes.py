"""A reminder's single-use discount code is created in Shopify (the sandbox, over real HTTP) just before its
email is sent, once: a resend finds it already created."""

from __future__ import annotations

from sqlalchemy import select

from jobs.dispatch import dispatch_due
from plugin.messaging import outbox
from plugin.models import Customer, Message
from sandbox.smtp import SmtpSandbox
from tests.conftest import wipe
from tests.messaging.conftest import IN_WINDOW
from tests.shopify_sync_harness import make_harness


def test_replenishment_code_is_created_before_the_email(database, tmp_path) -> None:
    harness = make_harness(database, tmp_path, customers=3, orders=3)
    try:
        with SmtpSandbox() as smtp:
            harness.ctx.extras["smtp_url"] = f"smtp://127.0.0.1:{smtp.port}"
            harness.clock.set(IN_WINDOW)
            remote = harness.sandbox.store.customers[0]
            with database.session() as s:
                customer = Customer(store_id=harness.store_id, external_id=str(remote.id), email="kim@example.com",
                                    first_name="Kim", time_zone="Europe/London", country="GB", marketing_consent=True)
                s.add(customer)
                s.flush()
                outbox.enqueue(s, store_id=harness.store_id, flow="replenishment", channel="email",
                               idempotency_key="refill-1", scheduled_for=IN_WINDOW, customer_id=customer.id,
                               marketing=True, to_address="kim@example.com",
                               payload={"product_title": "Coffee", "quantity": 1, "discount_percent": 15,
                                        "discount_code": "REFILL-ABC123", "run_out_at": "2026-03-10T00:00:00+00:00",
                                        "variant_external_id": "gid://shopify/ProductVariant/1"})
            assert dispatch_due(harness.ctx) == {"sent": 1}
            codes = [d for d in harness.sandbox.shop_state().discounts.values() if d.code == "REFILL-ABC123"]
            assert len(codes) == 1
            assert (codes[0].usage_limit, codes[0].percentage, codes[0].customer_ids) == (
                1, 0.15, (f"gid://shopify/Customer/{remote.id}",))
            html = smtp.messages[0].message.get_body(("html",)).get_content()
            assert '<span class="code"' in html and "REFILL-ABC123" in html
            with database.session() as s:
                message = s.scalar(select(Message))
                assert message.status == "sent" and message.payload["discount_created"] is True
                # A crash after creating the code but before recording it: the resend meets Shopify's TAKEN
                # for our own code, takes it as created, and sends.
                message.status, message.payload = "scheduled", {**message.payload, "discount_created": False}
            assert dispatch_due(harness.ctx) == {"sent": 1}
            assert len([d for d in harness.sandbox.shop_state().discounts.values() if d.code == "REFILL-ABC123"]) == 1
            assert [m.message_id for m in smtp.messages] == [smtp.messages[0].message_id] * 2
    finally:
        harness.stop()
        wipe(database.engine)
