"""Win-back end to end over the Shopify sandbox and the SMTP sandbox: the spend-X-save-Y code is created once per
recipient (a retried dispatch never makes a second one), the email shows it with recommendations the customer
does not own, the reminder reuses it, and a customer without consent gets neither email nor code."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from jobs.dispatch import dispatch_due
from plugin import flow_settings, recommendations
from plugin.flows import runner
from plugin.models import Message
from sandbox.smtp import SmtpSandbox
from tests.conftest import wipe
from tests.jobs import factory as f
from tests.messaging.conftest import IN_WINDOW
from tests.shopify_sync_harness import make_harness

DAY = timedelta(days=1)


def _codes(harness, prefix="WELCOMEBACK-"):
    return [d for d in harness.sandbox.shop_state().discounts.values() if d.code.startswith(prefix)]


def test_winback_code_once_per_recipient_with_recommendations_and_reminder(database, tmp_path) -> None:
    harness = make_harness(database, tmp_path, customers=3, orders=3)
    try:
        with SmtpSandbox() as smtp:
            harness.ctx.extras["smtp_url"] = f"smtp://127.0.0.1:{smtp.port}"
            harness.clock.set(IN_WINDOW)
            now = IN_WINDOW
            kim_remote, lee_remote = harness.sandbox.store.customers[:2]
            sid = harness.store_id
            with database.session() as s:
                kim = f.customer(s, sid, email="kim@example.com", time_zone="Europe/London", country="GB")
                kim.external_id = str(kim_remote.id)
                lee = f.customer(s, sid, email="lee@example.com", consent=False, time_zone="Europe/London")
                lee.external_id = str(lee_remote.id)
                soap = f.product(s, sid, consumable=False, title="Lavender soap")
                cream = f.product(s, sid, consumable=False, title="Rosemary cream", handle="rosemary-cream")
                sold_out = f.product(s, sid, consumable=False, title="Sold-out salt", total_inventory=0,
                                     tracks_inventory=True)
                other = f.product(s, sid, consumable=False, title="Candle")
                for _ in range(3):
                    c = f.customer(s, sid)
                    f.order(s, sid, c.id, now - 20 * DAY, lines=[(soap.id, 1), (cream.id, 1), (sold_out.id, 1)])
                for _ in range(3):
                    c = f.customer(s, sid)
                    f.order(s, sid, c.id, now - 20 * DAY, lines=[(other.id, 1)])
                for c in (kim, lee):
                    f.order(s, sid, c.id, now - 180 * DAY, lines=[(soap.id, 1)])
                flow_settings.update(s, harness.ctx.config, sid, "recommendations", {"min_co_customers": 2})
                kim_id, lee_id = kim.id, lee.id
            with database.session() as s:
                recommendations.rebuild_store(s, harness.ctx.config, sid, now)
            assert runner.run(harness.ctx, sid, "winback")["entered"] == 2
            assert dispatch_due(harness.ctx) == {"sent": 1, "skipped": 1, "skipped:no_consent": 1}
            codes = _codes(harness)
            assert len(codes) == 1
            code = codes[0]
            assert (code.usage_limit, code.applies_once_per_customer, code.percentage, code.amount_cents,
                    code.minimum_subtotal_cents, code.customer_ids) == (
                1, True, None, 3000, 10000, (f"gid://shopify/Customer/{kim_remote.id}",))
            assert code.ends_at == now + 30 * DAY
            email = smtp.messages[0]
            assert email.message["To"] == "kim@example.com"
            html = email.message.get_body(("html",)).get_content()
            assert code.code in html and "$30.00" in html and "$100.00" in html
            assert "Rosemary cream" in html and f"https://{harness.sandbox.shop_domains[0]}/products/rosemary-cream" \
                in html
            assert "Sold-out salt" not in html and "Lavender soap" not in html and "Candle" not in html
            with database.session() as s:
                rows = {m.customer_id: m for m in s.scalars(select(Message).where(Message.flow == "winback"))}
                assert (rows[lee_id].status, rows[lee_id].skip_reason) == ("skipped", "no_consent")
                sent = rows[kim_id]
                assert sent.status == "sent" and sent.payload["discount_created"] is True
                # A crash after the code was created, before it was recorded: the retried dispatch meets Shopify's
                # TAKEN for its own code, sends the same email, and no second code exists.
                sent.status, sent.payload = "scheduled", {**sent.payload, "discount_created": False}
            assert dispatch_due(harness.ctx) == {"sent": 1}
            assert len(_codes(harness)) == 1
            assert smtp.messages[1].message_id == email.message_id
            assert code.code in smtp.messages[1].message.get_body(("html",)).get_content()

            # Fourteen days on, still no order: one reminder with the same code, and still one code.
            harness.clock.set(now + 14 * DAY + timedelta(minutes=1))
            assert runner.run(harness.ctx, sid, "winback")["reminders"] == 1
            assert dispatch_due(harness.ctx) == {"sent": 1}
            reminder = smtp.messages[2].message
            assert reminder["Subject"].startswith("Your $30.00 welcome-back code")
            assert code.code in reminder.get_body(("html",)).get_content()
            assert len(_codes(harness)) == 1
    finally:
        harness.stop()
        wipe(database.engine)
