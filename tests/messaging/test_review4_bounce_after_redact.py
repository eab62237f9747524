"""Review 4 (an attack that held): a bounce report arriving after customers/redact stores no erased address again.

A relay may send its RFC 3464 report hours after the send, and Shopify's customers/redact may come in between.
Over the real inbound SMTP listener (the bounce mailbox), as tests/messaging/test_bounce_reports.py does.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from plugin.models import Customer, Message, Store, Suppression
from plugin.webhooks.compliance import email_digest, redact_customer
from sandbox import mail_reports
from tests.messaging.test_bounce_reports import bounce_app, listener, world  # noqa: F401 (fixtures)


def test_review4_a_bounce_after_a_redaction_keeps_the_address_erased(world, smtp, listener, bounce_app,  # noqa: F811
                                                                     clock) -> None:
    sent = smtp.messages[0]
    database = bounce_app.extensions["aftercare.db"]
    with database.session() as s:
        store = s.get(Store, world["store"])
        external_id = s.scalar(select(Customer.external_id).where(Customer.email == "c1@example.com"))
        redact_customer(s, store, store.external_id, {"customer": {"id": external_id, "email": "c1@example.com"},
                                                      "orders_to_redact": []}, clock.now())
    clock.advance(timedelta(hours=2))
    mail_reports.send("127.0.0.1", listener.port, mail_reports.dsn(sent, clock.now()), sent.envelope_from)
    with database.session() as s:
        listed = sorted((r.email, r.reason) for r in s.scalars(select(Suppression)))
        first = s.get(Message, world["first"])
        kept = (first.status, first.to_address, first.last_error or "")
    # Only the digest the redaction left: no flow can email the address, and it is nowhere in clear.
    assert listed == [(email_digest("c1@example.com"), "redact")]
    assert kept == ("sent", None, "")
    assert listener.handler.outcomes[-1].reply == "250 2.0.0 Nothing to suppress"
