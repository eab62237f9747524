"""What each stored webhook does to our data; ``jobs.webhooks.process_pending`` calls ``process_event``.

Bodies go through ``connectors.shopify.webhook_payloads`` into the same records the GraphQL sync
produces and through the same owners (``plugin.sync.orders``, ``plugin.sync.customers``), so an older copy
(by ``updated_at``) never overwrites a newer one, and redacted customers stay redacted.

E-mail consent (API 2025-01) arrives only by ``customers_email_marketing_consent/update``: customers/update
and the customers inside order bodies no longer carry it, so those keep the stored consent and tags.

Which sources change consent. A grant is taken only from Shopify's consent record of the customer: the
sync's ``Customer.emailMarketingConsent`` and the ``customers_email_marketing_consent/update`` topic (both
dated by ``consent_updated_at``; there is no double opt-in of our own). A withdrawal is taken from those and
also from the consent a customers/update body of an older API version still carries (``email_marketing_consent``
not ``subscribed``, or the legacy ``accepts_marketing: false``). Never from an order body:
``buyer_accepts_marketing`` is the checkout's box, which Shopify itself turns into the customer's consent
record (and an unticked box is no withdrawal). A withdrawal cancels the customer's scheduled marketing at once
(``plugin.sync.customers.upsert_customers``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.records import CustomerRecord
from connectors.shopify import webhook_payloads as payloads
from plugin.auth.lifecycle import SKIP_UNINSTALLED, mark_uninstalled
from plugin.context import JobContext
from plugin.messaging.withdrawals import CONSENT_WITHDRAWN, stop_store, withdraw_consent
from plugin.models import ComplianceRequest, Customer, Store, WebhookEvent
from plugin.sync import orders
from plugin.sync.customers import upsert_customers
from plugin.webhooks import compliance, deletions
from plugin.webhooks.inbox import PERMANENT, TRANSIENT, find_shopify_store

log = logging.getLogger("aftercare.webhooks")

ORDER_TOPICS = ("orders/create", "orders/updated", "orders/fulfilled", "orders/cancelled")
EMAIL_CONSENT_TOPIC = "customers_email_marketing_consent/update"
SKIP_CONSENT_WITHDRAWN = CONSENT_WITHDRAWN
# Bodies we keep after processing: they hold no personal data and other code reads them later.
KEEP_BODY_TOPICS = ("bulk_operations/finish",)


def _with_stored_customer_facts(session: Session, store_id: int, record: CustomerRecord) -> CustomerRecord:
    """Fill what REST customer bodies lack from the stored row; consent and tags always stay as stored.

    A 2025-01 customer payload has no consent or tags at all, so their absence says nothing: consent
    changes only by its own topic (``_email_consent``) or the sync. A new customer starts without consent.
    """
    stored = session.execute(select(Customer.locale, Customer.time_zone, Customer.birthday, Customer.marketing_consent,
                                    Customer.marketing_consent_at, Customer.tags).where(
        Customer.store_id == store_id, Customer.external_id == record.external_id)).first()
    if stored is None:
        return record
    return dataclasses.replace(record, locale=record.locale or stored[0], time_zone=record.time_zone or stored[1],
                               birthday=record.birthday or stored[2], marketing_consent=bool(stored[3]),
                               marketing_consent_at=stored[4], tags=tuple(stored[5] or ()))


def _order(session: Session, store: Store, event: WebhookEvent, now: datetime, ctx: JobContext | None) -> str:
    return orders.upsert_webhook_order(session, store.id, payloads.order_record(event.payload or {}))


def _fulfillment(session: Session, store: Store, event: WebhookEvent, now: datetime, ctx: JobContext | None) -> str:
    order_id, fulfillment = payloads.fulfillment_update(event.payload or {})
    return orders.apply_fulfillment(session, store.id, order_id, fulfillment)


def _fulfillment_event(session: Session, store: Store, event: WebhookEvent, now: datetime,
                       ctx: JobContext | None) -> str:
    order_id, fulfillment, carrier_event = payloads.fulfillment_event(event.payload or {})
    return orders.apply_fulfillment(session, store.id, order_id, fulfillment, carrier_event)


def _refund(session: Session, store: Store, event: WebhookEvent, now: datetime, ctx: JobContext | None) -> str:
    body = event.payload or {}
    order_id, amount = payloads.refund_created(body)
    return orders.apply_refund(session, store.id, order_id, amount, payloads.parse_time(body.get("created_at")))


def _customer(session: Session, store: Store, event: WebhookEvent, now: datetime, ctx: JobContext | None) -> str:
    body = event.payload or {}
    record = _with_stored_customer_facts(session, store.id, payloads.customer_record(body))
    consent = payloads.customer_body_consent(body)
    if consent is not None and not consent.subscribed:
        # A withdrawal counts from this copy too; a grant does not (module doc). Dated as the consent topic does.
        record = dataclasses.replace(record, marketing_consent=False, marketing_consent_at=(
            consent.consent_updated_at or event.triggered_at or event.received_at))
    return "applied" if upsert_customers(session, store.id, [record], now=now) else "unchanged"


def _email_consent(session: Session, store: Store, event: WebhookEvent, now: datetime, ctx: JobContext | None) -> str:
    """Apply a customer's e-mail consent state; on a withdrawal cancel their scheduled marketing at once.

    Only ``subscribed`` is consent (DESIGN §1). ``marketing_consent_at`` takes the body's
    ``consent_updated_at`` — when consent was given, or for a withdrawal when it was withdrawn (a body
    without it: when Shopify sent the event) — so a body older than the state we hold, e.g. a delivery
    Shopify retried late, changes nothing; on a tie a withdrawal wins.

    Shopify does not order deliveries: this body may come before the customers/update or order that
    introduces the customer, so an unknown customer is created with what the body holds (id, address) —
    the customer stream syncs every customer anyway, and later bodies fill in the rest — unless that
    customer was redacted on request.
    """
    update = payloads.email_consent_update(event.payload or {})
    customer = session.scalar(select(Customer).where(Customer.store_id == store.id,
                                                     Customer.external_id == update.customer_id))
    if customer is None:
        if session.scalar(select(ComplianceRequest.id).where(
                ComplianceRequest.store_id == store.id, ComplianceRequest.kind == "customers/redact",
                ComplianceRequest.customer_external_id == update.customer_id).limit(1)) is not None:
            return "customer redacted"
        customer = Customer(store_id=store.id, external_id=update.customer_id, email=update.email, tags=[],
                            marketing_consent=False)
        session.add(customer)
        session.flush()
    if customer.redacted_at is not None:
        return "customer redacted"
    decided_at = update.consent_updated_at or event.triggered_at or event.received_at
    held_at = customer.marketing_consent_at
    if held_at is not None and (decided_at < held_at or (
            decided_at == held_at and update.subscribed and not customer.marketing_consent)):
        return "stale"
    changed = (customer.marketing_consent, held_at) != (update.subscribed, decided_at)
    customer.marketing_consent, customer.marketing_consent_at = update.subscribed, decided_at
    cancelled = 0
    if not update.subscribed:
        # Only marketing goes (review requests and surveys need no consent); the address is not suppressed.
        cancelled = withdraw_consent(session, store.id, customer.id, SKIP_CONSENT_WITHDRAWN, now)
        if cancelled:
            log.info("scheduled marketing cancelled after consent withdrawal",
                     extra={"store_id": store.id, "customer_id": customer.id, "cancelled": cancelled})
    return "applied" if changed or cancelled else "unchanged"


def _uninstalled(session: Session, store: Store, event: WebhookEvent, now: datetime, ctx: JobContext | None) -> str:
    sent_at = event.triggered_at or event.received_at
    if store.status == "active" and store.installed_at is not None and store.installed_at > sent_at:
        return "reinstalled since"
    mark_uninstalled(session, store, now)
    cancelled = stop_store(session, store.id, SKIP_UNINSTALLED, now)
    log.info("scheduled messages cancelled after uninstall", extra={"store_id": store.id, "cancelled": cancelled})
    return "applied"


def _order_deleted(session: Session, store: Store, event: WebhookEvent, now: datetime, ctx: JobContext | None) -> str:
    return deletions.delete_order(session, store, payloads.deleted_id(event.payload or {}, "order"), now)


def _product_deleted(session: Session, store: Store, event: WebhookEvent, now: datetime, ctx: JobContext | None) -> str:
    return deletions.delete_product(session, store, payloads.deleted_id(event.payload or {}, "product"), now)


def _customer_deleted(session: Session, store: Store, event: WebhookEvent, now: datetime,
                      ctx: JobContext | None) -> str:
    return deletions.delete_customer(session, store, payloads.deleted_id(event.payload or {}, "customer"), now)


def _bulk_finished(session: Session, store: Store, event: WebhookEvent, now: datetime, ctx: JobContext | None) -> str:
    # The sync job owns bulk operations; it finds this event with `bulk_finish_event`.
    return "kept for sync"


Handler = Callable[[Session, Store, WebhookEvent, datetime, Any], str]
STORE_HANDLERS: dict[str, Handler] = {
    **dict.fromkeys(ORDER_TOPICS, _order),
    "fulfillments/create": _fulfillment,
    "fulfillments/update": _fulfillment,
    "fulfillment_events/create": _fulfillment_event,
    "refunds/create": _refund,
    "customers/update": _customer,
    "app/uninstalled": _uninstalled,
    "bulk_operations/finish": _bulk_finished,
    "orders/delete": _order_deleted,
    "products/delete": _product_deleted,
    "customers/delete": _customer_deleted,
    EMAIL_CONSENT_TOPIC: _email_consent,
}


def failure_kind(exc: BaseException) -> str:
    """Classify a processing error: permanent when the body can never be applied, else transient (retried).

    Mapping a body touches nothing but the body (connectors.shopify.webhook_payloads), so its PayloadError is
    permanent; anything else (the database, a bug fixed by the next release) may pass.
    """
    return PERMANENT if isinstance(exc, payloads.PayloadError) else TRANSIENT


def _already_processed_event(session: Session, event: WebhookEvent) -> bool:
    """Say whether the same event (shop, topic, event id) was already processed under another webhook id."""
    if not event.event_id:
        return False
    return session.scalar(select(WebhookEvent.id).where(
        WebhookEvent.shop_domain == event.shop_domain, WebhookEvent.topic == event.topic,
        WebhookEvent.event_id == event.event_id, WebhookEvent.id != event.id,
        WebhookEvent.processed_at.is_not(None)).limit(1)) is not None


def process_event(session: Session, event: WebhookEvent, now: datetime, ctx: JobContext | None = None) -> str:
    """Apply one stored webhook and mark it processed; return what happened (for counts and logs)."""
    store = session.get(Store, event.store_id) if event.store_id else find_shopify_store(session, event.shop_domain)
    body = event.payload or {}
    outcome: str
    if _already_processed_event(session, event):
        outcome = "duplicate event"
    elif event.topic == "customers/data_request":
        compliance.handle_data_request(session, store, event.shop_domain, body, now)
        outcome = "exported"
    elif event.topic == "customers/redact":
        compliance.redact_customer(session, store, event.shop_domain, body, now, current_event_id=event.id)
        outcome = "redacted"
    elif event.topic == "shop/redact":
        compliance.redact_shop(session, store, event.shop_domain, now, current_event_id=event.id)
        outcome = "redacted"
    elif store is None:
        outcome = "unknown shop"
    elif store.status == "uninstalled" and event.topic != "app/uninstalled":
        outcome = "store uninstalled"
    elif event.topic in STORE_HANDLERS:
        outcome = STORE_HANDLERS[event.topic](session, store, event, now, ctx)
    else:
        outcome = "unhandled topic"
    if event.store_id is None and store is not None and event.topic != "shop/redact":
        event.store_id = store.id
    event.processed_at = now
    event.attempts += 1
    event.last_error = None
    if event.topic not in KEEP_BODY_TOPICS:
        event.payload = None  # data minimisation: the body's facts now live in their tables
    session.flush()
    return outcome


def bulk_finish_event(session: Session, store_id: int, bulk_operation_gid: str) -> WebhookEvent | None:
    """Return the bulk_operations/finish event for a bulk operation, if Shopify has sent it."""
    for event in session.scalars(select(WebhookEvent).where(
            WebhookEvent.store_id == store_id, WebhookEvent.topic == "bulk_operations/finish",
            WebhookEvent.payload.is_not(None)).order_by(WebhookEvent.id.desc())):
        if (event.payload or {}).get("admin_graphql_api_id") == bulk_operation_gid:
            return event
    return None
