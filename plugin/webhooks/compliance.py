"""Shopify's mandatory compliance webhooks: export a customer's data, erase it, erase a whole shop.

https://shopify.dev/docs/apps/build/privacy-law-compliance
What a redaction erases: every personal field of the customer (email, first name, locale, country,
time zone, birthday, tags), the free text they wrote or that names them (review title/body/reviewer
name and our reply, survey comments, ticket subjects/notes, message subjects/addresses/payloads),
earlier exports, and stored webhook bodies that mention them. What it keeps: anonymous facts the
merchant's analytics need (order totals, dates, ratings, scores, message statuses) and a SHA-256 of
the email on the suppression list so no flow ever emails that address again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Text, cast, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, selectinload

from plugin.context import JobContext
from plugin.messaging import handover, outbox
from plugin.models import (
    Base,
    CancellationAnswer,
    ComplianceRequest,
    Customer,
    DeliveryOptOut,
    Merchant,
    Message,
    Order,
    OrderLine,
    Parcel,
    PurchaseCycle,
    Review,
    Store,
    Suppression,
    SurveyResponse,
    Ticket,
    TicketNote,
    VipMember,
    WebhookEvent,
)
from plugin.sync import orders as sync_orders
from plugin.sync import parcels
from plugin.sync.customers import add_redaction_tombstones
from plugin.sync.sql import IN_CHUNK, chunked

log = logging.getLogger("aftercare.compliance")

REDACTED_SKIP_REASON = "customer_redacted"


def email_digest(email: str) -> str:
    """Return the SHA-256 hex digest of a normalised (trimmed, lower-cased) email address."""
    return hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _row(obj: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    return {name: _plain(getattr(obj, name)) for name in fields}


def _find_customer(session: Session, store_id: int, external_id: str | None, email: str | None) -> Customer | None:
    if external_id:
        found = session.scalar(select(Customer).where(Customer.store_id == store_id,
                                                      Customer.external_id == external_id))
        if found is not None:
            return found
    if email:
        # Equality, not ILIKE: "_" and "%" are characters of an address, and a pattern would find someone else.
        return session.scalar(select(Customer).where(Customer.store_id == store_id,
                                                     func.lower(Customer.email) == email.strip().lower()).limit(1))
    return None


def _customer_orders(session: Session, store_id: int, customer: Customer | None,
                     order_ids: list[str]) -> list[Order]:
    conditions = []
    if customer is not None:
        conditions.append(Order.customer_id == customer.id)
    if order_ids:
        conditions.append(Order.external_id.in_(order_ids))
    if not conditions:
        return []
    return list(session.scalars(select(Order).where(Order.store_id == store_id, or_(*conditions))
                                .order_by(Order.created_at_remote, Order.id)))


def _suppression_rows(session: Session, store_id: int, email: str | None) -> list[Suppression]:
    if not email:
        return []
    keys = [email.strip().lower(), email_digest(email)]
    return list(session.scalars(select(Suppression).where(Suppression.store_id == store_id,
                                                          Suppression.email.in_(keys))))


def export_customer(session: Session, store_id: int, external_id: str | None, email: str | None,
                    order_ids: list[str]) -> dict[str, Any]:
    """Return everything we hold about one customer of a store, as JSON-ready data."""
    customer = _find_customer(session, store_id, external_id, email)
    orders = _customer_orders(session, store_id, customer, order_ids)
    export: dict[str, Any] = {"customer": None, "orders": [], "messages": [], "reviews": [],
                              "survey_responses": [], "tickets": [], "suppressions": []}
    # A few statements for all the orders, whatever their number (selectinload: one more per relationship).
    order_ids = [order.id for order in orders]
    lines: dict[int, list[OrderLine]] = {}
    shipped: dict[int, list[Parcel]] = {}
    for chunk in chunked(order_ids, IN_CHUNK):
        for line in session.scalars(select(OrderLine).where(OrderLine.order_id.in_(chunk)).order_by(OrderLine.id)):
            lines.setdefault(line.order_id, []).append(line)
        for parcel in session.scalars(select(Parcel).where(Parcel.order_id.in_(chunk))
                                      .options(selectinload(Parcel.events)).order_by(Parcel.id)):
            shipped.setdefault(parcel.order_id, []).append(parcel)
    for order in orders:
        export["orders"].append({
            **_row(order, ("external_id", "name", "created_at_remote", "currency", "total_price", "total_refunded",
                           "financial_status", "fulfillment_status", "cancelled_at", "fulfilled_at",
                           "delivered_at", "tags")),
            "lines": [_row(line, ("external_id", "title", "sku", "quantity", "price"))
                      for line in lines.get(order.id, [])],
            "parcels": [{**_row(parcel, ("tracking_company", "tracking_number", "tracking_url", "status", "shipped_at",
                                         "estimated_delivery_at", "delivered_at")),
                         "events": [_row(e, ("status", "happened_at", "city", "province", "country", "message"))
                                    for e in parcel.events]}
                        for parcel in shipped.get(order.id, [])]})
    export["suppressions"] = [_row(s, ("reason", "created_at")) for s in _suppression_rows(session, store_id, email)]
    if customer is None:
        return export
    export["customer"] = _row(customer, ("external_id", "email", "first_name", "locale", "country", "time_zone",
                                         "marketing_consent", "marketing_consent_at", "birthday", "tags",
                                         "remote_created_at"))
    cid = customer.id
    export["messages"] = [_row(m, ("flow", "step", "channel", "status", "skip_reason", "to_address", "subject",
                                    "scheduled_for", "sent_at", "opened_at", "clicked_at"))
                          for m in session.scalars(select(Message).where(Message.store_id == store_id,
                                                                         Message.customer_id == cid)
                                                   .order_by(Message.id))]
    export["reviews"] = [_row(r, ("source", "rating", "title", "body", "reviewer_name", "language",
                                  "created_at_remote", "reply_body"))
                         for r in session.scalars(select(Review).where(Review.store_id == store_id,
                                                                       Review.customer_id == cid).order_by(Review.id))]
    export["survey_responses"] = [
        _row(s, ("kind", "score", "comment", "answered_at"))
        for s in session.scalars(select(SurveyResponse).where(SurveyResponse.store_id == store_id,
                                                              SurveyResponse.customer_id == cid)
                                 .order_by(SurveyResponse.id))]
    for ticket in session.scalars(select(Ticket).where(Ticket.store_id == store_id, Ticket.customer_id == cid)
                                  .options(selectinload(Ticket.notes)).order_by(Ticket.id)):
        export["tickets"].append({**_row(ticket, ("subject", "severity", "status", "opened_at", "resolved_at",
                                                  "resolution")),
                                  "notes": [_row(n, ("body", "created_at")) for n in ticket.notes]})
    return export


def _payload_customer(payload: dict[str, Any]) -> tuple[str | None, str | None]:
    customer = payload.get("customer") or {}
    external = customer.get("id")
    return (str(external) if external is not None else None), customer.get("email")


def handle_data_request(session: Session, store: Store | None, shop_domain: str, payload: dict[str, Any],
                        now: datetime) -> ComplianceRequest:
    """Record a customers/data_request and produce the export the merchant hands to the customer."""
    external_id, email = _payload_customer(payload)
    order_ids = [str(o) for o in payload.get("orders_requested") or ()]
    result: dict[str, Any] = {"data_request_id": (payload.get("data_request") or {}).get("id")}
    if store is not None:
        result.update(export_customer(session, store.id, external_id, email, order_ids))
    request = ComplianceRequest(store_id=store.id if store else None, shop_domain=shop_domain,
                                kind="customers/data_request", customer_external_id=external_id,
                                requested_at=now, completed_at=now, result=result)
    session.add(request)
    session.flush()
    log.info("customer data export produced", extra={"store_id": store.id if store else None,
                                                     "compliance_request_id": request.id})
    return request


def _mentions(payload: Any, email: str | None, external_id: str | None) -> bool:
    if not payload:
        return False
    text = json.dumps(payload, ensure_ascii=False).lower()
    # The whole address, not a substring: erasing ohn@example.com must not drop john@example.com's pending body.
    if email and re.search(r"(?<![a-z0-9._%+\-])" + re.escape(email.strip().lower()) + r"(?![a-z0-9.\-]*[a-z0-9])",
                           text):
        return True
    if external_id and isinstance(payload, dict):
        customer = payload.get("customer") or {}
        return str(customer.get("id")) == external_id or str(payload.get("customer_id")) == external_id
    return False


_DIGEST_CHUNK = 1000


def _suppress_digests(session: Session, store_id: int, emails: list[str], now: datetime) -> None:
    """Replace any clear-text suppression of the addresses with their digests (reason ``redact``)."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    plain = sorted({e.strip().lower() for e in emails})
    # In chunks: both databases cap the bound parameters of one statement.
    for start in range(0, len(plain), _DIGEST_CHUNK):
        chunk = plain[start:start + _DIGEST_CHUNK]
        session.execute(delete(Suppression).where(Suppression.store_id == store_id, Suppression.email.in_(chunk)))
        stmt = insert(Suppression).values([{"store_id": store_id, "email": email_digest(e), "reason": "redact",
                                            "detail": "customers/redact", "created_at": now} for e in chunk])
        session.execute(stmt.on_conflict_do_update(index_elements=["store_id", "email"],
                                                   set_={"reason": "redact", "detail": "customers/redact"}))


def redact_customer(session: Session, store: Store | None, shop_domain: str, payload: dict[str, Any],
                    now: datetime, current_event_id: int | None = None) -> ComplianceRequest:
    """Erase one customer's personal data (customers/redact) and record that it was done."""
    external_id, email = _payload_customer(payload)
    counts: dict[str, Any] = {"customer_found": False}
    if store is not None:
        counts = _redact_in_store(session, store, external_id, email,
                                  [str(o) for o in payload.get("orders_to_redact") or ()], now, current_event_id)
    request = ComplianceRequest(store_id=store.id if store else None, shop_domain=shop_domain,
                                kind="customers/redact", customer_external_id=external_id,
                                requested_at=now, completed_at=now, result=counts)
    session.add(request)
    session.flush()
    log.info("customer redacted", extra={"store_id": store.id if store else None, **counts})
    return request


def erase_customer_fields(customer: Customer, now: datetime) -> None:
    """Clear a customer row's personal data and mark it erased; the id stays (upserts never refill it)."""
    customer.email = customer.first_name = customer.locale = customer.country = customer.time_zone = None
    customer.birthday = None
    customer.birthday_changed_at = None
    customer.tags = []
    customer.marketing_consent = False
    customer.marketing_consent_at = None
    customer.redacted_at = now


def _erase_ticket_alerts(session: Session, store_id: int, tickets: dict[int, str | None]) -> None:
    """Take a redacted customer's words out of the merchant's alerts about their tickets ({ticket id: subject}).

    The alerts name no customer (they go to the merchant), so the message match of a redaction misses them; their
    payload keeps the ticket's subject. An alert not sent yet renders from the erased ticket instead.
    """
    for alert in session.scalars(select(Message).where(Message.store_id == store_id,
                                                       Message.ticket_id.in_(list(tickets)),
                                                       Message.customer_id.is_(None))):
        words = tickets.get(alert.ticket_id) or ""
        alert.payload = {k: v for k, v in (alert.payload or {}).items() if k not in ("ticket_subject", "customer_id")}
        if words and alert.subject and words in alert.subject:
            alert.subject = None


def _redact_in_store(session: Session, store: Store, external_id: str | None, email: str | None,
                     order_ids: list[str], now: datetime, current_event_id: int | None) -> dict[str, Any]:
    customer = _find_customer(session, store.id, external_id, email)
    found = customer is not None
    if customer is None and external_id:
        # Not stored yet: a tombstone keeps the backfill, later syncs and webhooks from storing them.
        add_redaction_tombstones(session, store.id, {external_id: now})
        customer = _find_customer(session, store.id, external_id, None)
    email = email or (customer.email if customer else None)
    # The dispatcher's last check takes these locks too: a message it has not let go by now never leaves.
    handover.lock_recipients(session, store.id, [customer.id] if customer else [], [email])
    orders = _customer_orders(session, store.id, customer, order_ids)
    counts: dict[str, Any] = {"customer_found": found, "orders": len(orders)}
    sync_orders.erase_tags(session, [order.id for order in orders])
    counts["parcel_events"] = parcels.erase_delivery_details(session, [order.id for order in orders])
    if email:
        _suppress_digests(session, store.id, [email], now)
        # The hashed suppression above covers every email kind, so the plain-address opt-out of one kind goes.
        session.execute(delete(DeliveryOptOut).where(DeliveryOptOut.store_id == store.id,
                                                     DeliveryOptOut.email == email.strip().lower()))
    message_match = [func.lower(Message.to_address) == email.strip().lower()] if email else []
    if customer is not None:
        cid = customer.id
        erase_customer_fields(customer, now)
        message_match.append(Message.customer_id == cid)
        counts["reviews"] = session.execute(
            update(Review).where(Review.store_id == store.id, Review.customer_id == cid)
            .values(title=None, body=None, reviewer_name=None, reply_body=None)).rowcount
        counts["survey_responses"] = session.execute(
            update(SurveyResponse).where(SurveyResponse.store_id == store.id, SurveyResponse.customer_id == cid)
            .values(comment=None)).rowcount
        counts["cancellation_answers"] = session.execute(
            update(CancellationAnswer).where(CancellationAnswer.store_id == store.id,
                                             CancellationAnswer.customer_id == cid).values(comment=None)).rowcount
        tickets = dict(session.execute(select(Ticket.id, Ticket.subject).where(Ticket.store_id == store.id,
                                                                               Ticket.customer_id == cid)).all())
        ticket_ids = list(tickets)
        if ticket_ids:
            _erase_ticket_alerts(session, store.id, tickets)
            session.execute(update(Ticket).where(Ticket.id.in_(ticket_ids)).values(subject="", resolution=None))
            session.execute(update(TicketNote).where(TicketNote.ticket_id.in_(ticket_ids))
                            .values(body="[redacted]"))
        counts["tickets"] = len(ticket_ids)
        # The replenishment planner's per-customer state goes; its re-buy gaps stay, anonymous like the orders.
        session.execute(delete(PurchaseCycle).where(PurchaseCycle.customer_id == cid))
        # Their VIP membership goes too (it may hold Shopify's error text about them); plugin.flows.vip never
        # makes a redacted customer a member again.
        session.execute(delete(VipMember).where(VipMember.customer_id == cid))
        session.execute(update(ComplianceRequest).where(
            ComplianceRequest.store_id == store.id, ComplianceRequest.kind == "customers/data_request",
            ComplianceRequest.customer_external_id == customer.external_id).values(result={"redacted": True}))
    if message_match:
        if email:
            # A refusal kept as the message's error quotes the address ("550 5.1.1 <kim@...>: User unknown").
            quoted = re.compile(re.escape(email.strip()), re.IGNORECASE)
            for message_id, error in session.execute(select(Message.id, Message.last_error).where(
                    Message.store_id == store.id, or_(*message_match), Message.last_error.is_not(None))).all():
                if quoted.search(error):
                    session.execute(update(Message).where(Message.id == message_id)
                                    .values(last_error=quoted.sub("[redacted]", error)))
        counts["messages"] = _erase_messages(session, store.id, or_(*message_match), now)
    erased = 0
    for event in session.scalars(select(WebhookEvent).where(
            or_(WebhookEvent.store_id == store.id, WebhookEvent.shop_domain == store.external_id),
            WebhookEvent.payload.is_not(None))):
        if event.id != current_event_id and _mentions(event.payload, email, external_id):
            event.payload = None
            if event.processed_at is None:
                event.processed_at = now
                event.last_error = "body erased by customers/redact before processing"
            erased += 1
    counts["webhook_bodies_erased"] = erased
    session.flush()
    return counts


def _erase_messages(session: Session, store_id: int, match: Any, now: datetime, only: Any = None) -> int:
    """Cancel the store's matching messages not yet sent, then erase their address, subject and body (those ``only``
    selects, when given); return how many were erased."""
    base = update(Message).where(Message.store_id == store_id, match)
    session.execute(base.where(outbox.unsent()).values(status="cancelled", claimed_by=None,
                                                        skip_reason=REDACTED_SKIP_REASON, updated_at=now))
    erase = base if only is None else base.where(only)
    return int(session.execute(erase.values(to_address=None, subject=None, payload={})).rowcount or 0)


def sweep_redacted(ctx: JobContext, store_id: int) -> dict[str, int]:
    """Job: erase what reached redacted customers' orders, tickets and messages after their redaction.

    A carrier event or a fulfilment update can arrive for such an order later (or in a transaction that raced the
    redaction): it is stored as sent, and this daily pass erases it as ``customers/redact`` did, well inside the 30
    days Shopify allows (https://shopify.dev/docs/apps/build/compliance/privacy-law-compliance). So do a ticket's
    subject and a message's address and body written by a job that read the customer before the redaction
    committed (PostgreSQL READ COMMITTED: nothing of the job's transaction was visible to the redaction's).
    """
    with ctx.database.session() as session:
        redacted = select(Customer.id).where(Customer.store_id == store_id, Customer.redacted_at.is_not(None))
        orders = list(session.scalars(select(Order.id).where(Order.store_id == store_id,
                                                             Order.customer_id.in_(redacted))))
        counts = {"orders": len(orders), "parcel_events": parcels.erase_delivery_details(session, orders)}
        # What customers/redact erases of their tickets and messages, for the rows a job wrote in a transaction that
        # raced it (read the customer before the redaction committed, wrote after): a delivery ticket's subject
        # quoting the tracking number, the merchant's alert copying it, a notice holding the address.
        written = or_(Message.to_address.is_not(None), Message.subject.is_not(None),
                      func.coalesce(cast(Message.payload, Text), "{}") != "{}")
        holders = sorted(session.scalars(select(Message.customer_id).where(
            Message.store_id == store_id, Message.customer_id.in_(redacted), or_(written, outbox.unsent()))
            .distinct()))
        if holders:
            # First, as customers/redact does: the dispatcher's last check takes these locks before its writes.
            handover.lock_recipients(session, store_id, holders)
        tickets = dict(session.execute(select(Ticket.id, Ticket.subject).where(
            Ticket.store_id == store_id, Ticket.customer_id.in_(redacted), Ticket.subject != "")).all())
        if tickets:
            _erase_ticket_alerts(session, store_id, tickets)
            for chunk in chunked(sorted(tickets), IN_CHUNK):
                session.execute(update(Ticket).where(Ticket.id.in_(chunk)).values(subject=""))
        counts["tickets"] = len(tickets)
        counts["messages"] = 0
        if holders:
            counts["messages"] = _erase_messages(session, store_id, Message.customer_id.in_(holders), ctx.clock.now(),
                                                 only=written)
        session.flush()
        return counts


def carry_earlier_redactions(session: Session, store: Store) -> int:
    """Leave tombstones for customers/redact requests that came for this shop before its store existed.

    Shopify may send them while no store row holds the shop (before the install, or after a shop/redact
    and a new install); they are recorded with the shop domain alone. Each tombstone is dated by the first
    request for that customer. Return how many tombstones were added.
    """
    first: dict[str, datetime] = {}
    for external_id, requested_at in session.execute(select(
            ComplianceRequest.customer_external_id, ComplianceRequest.requested_at).where(
            ComplianceRequest.shop_domain == store.external_id, ComplianceRequest.kind == "customers/redact",
            ComplianceRequest.customer_external_id.is_not(None)).order_by(ComplianceRequest.requested_at.desc())):
        first[external_id] = requested_at
    return add_redaction_tombstones(session, store.id, first)


# What a shop/redact of a reinstalled shop keeps: the new install itself (its grant and shop details on the store
# row) and the merchant's own configuration. The compliance and webhook records are handled by redact_shop.
# The merchant's own settings (flows, templates, their shopping calendar) hold no customer data and stay.
_KEPT_ON_REINSTALLED = frozenset({"store", "flow_settings", "template", "shopping_event", "compliance_request",
                                  "webhook_event"})


def _erase_reinstalled_store(session: Session, store: Store, now: datetime) -> dict[str, int]:
    """Erase what the earlier install of a reinstalled shop left, keeping the store working; return row counts.

    Shopify sends shop/redact 48 hours after an uninstall even when the merchant has installed the app again in
    between (https://shopify.dev/docs/apps/build/privacy-law-compliance#shop-redact). Deleting the store row
    then would break the merchant's new install; instead every customer, order, message and derived row goes,
    the suppression list keeps only digests (nobody who unsubscribed is emailed again), the sync starts a new
    backfill, and the store counts as reinstalled now so the re-read history is never messaged about.
    """
    _suppress_digests(session, store.id, list(session.scalars(select(Suppression.email).where(
        Suppression.store_id == store.id, Suppression.reason != "redact"))), now)
    erased: dict[str, int] = {}
    for table in reversed(Base.metadata.sorted_tables):
        if table.name in _KEPT_ON_REINSTALLED or table.name == "suppression" or "store_id" not in table.c:
            continue
        result = session.execute(table.delete().where(table.c.store_id == store.id))
        if result.rowcount:
            erased[table.name] = result.rowcount
    store.reinstalled_at = now
    session.flush()
    carry_earlier_redactions(session, store)
    return erased


def redact_shop(session: Session, store: Store | None, shop_domain: str, now: datetime,
                current_event_id: int | None = None) -> ComplianceRequest:
    """Delete everything we hold about a shop (shop/redact), keeping only a record that it was done."""
    if store is not None and store.status == "active" and store.reinstalled_at is not None:
        return _redact_reinstalled_shop(session, store, shop_domain, now, current_event_id)
    deleted_store = store is not None
    if current_event_id is not None:
        # The event row outlives its store so a replay of this delivery is still recognised.
        session.execute(update(WebhookEvent).where(WebhookEvent.id == current_event_id)
                        .values(store_id=None, payload=None))
    session.execute(delete(WebhookEvent).where(WebhookEvent.shop_domain == shop_domain,
                                               WebhookEvent.id != (current_event_id or 0),
                                               WebhookEvent.store_id.is_(None)))
    if store is not None:
        store_id, merchant_id = store.id, store.merchant_id
        session.execute(update(ComplianceRequest).where(ComplianceRequest.store_id == store_id)
                        .values(result=None))
        session.expunge(store)
        # ON DELETE CASCADE removes customers, orders, messages, reviews ... of the store.
        session.execute(delete(Store).where(Store.id == store_id))
        if session.scalar(select(Store.id).where(Store.merchant_id == merchant_id).limit(1)) is None:
            session.execute(delete(Merchant).where(Merchant.id == merchant_id))
    request = ComplianceRequest(store_id=None, shop_domain=shop_domain, kind="shop/redact", requested_at=now,
                                completed_at=now, result={"store_deleted": deleted_store})
    session.add(request)
    session.flush()
    log.info("shop redacted", extra={"shop": shop_domain, "store_deleted": deleted_store})
    return request


def _redact_reinstalled_shop(session: Session, store: Store, shop_domain: str, now: datetime,
                             current_event_id: int | None) -> ComplianceRequest:
    """Apply a late shop/redact to a shop installed again since: erase the old install's data, keep the store."""
    if current_event_id is not None:
        session.execute(update(WebhookEvent).where(WebhookEvent.id == current_event_id).values(payload=None))
    # Bodies of the old install's deliveries go; those not applied yet are read again by the new backfill.
    session.execute(delete(WebhookEvent).where(WebhookEvent.store_id == store.id,
                                               WebhookEvent.id != (current_event_id or 0)))
    session.execute(update(ComplianceRequest).where(ComplianceRequest.store_id == store.id)
                    .values(result=None))
    erased = _erase_reinstalled_store(session, store, now)
    request = ComplianceRequest(store_id=store.id, shop_domain=shop_domain, kind="shop/redact", requested_at=now,
                                completed_at=now, result={"store_deleted": False, "reinstalled": True,
                                                          "rows_erased": sum(erased.values())})
    session.add(request)
    session.flush()
    log.info("shop redacted after a reinstall; the store stays installed",
             extra={"shop": shop_domain, "store_id": store.id, "rows_erased": erased})
    return request
