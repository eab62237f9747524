"""What forbids messages at once — unsubscribes, suppressions, consent withdrawals, uninstall — each under the
hand-over locks, cancelling what has not left yet (plugin/messaging/handover.py explains the guarantee)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from plugin.messaging import handover, outbox
from plugin.messaging.suppression import normalize, suppress, turn_off_delivery_updates
from plugin.models import Customer, Message

# The skip reason of marketing cancelled because the customer withdrew consent (any source: sync or webhook).
CONSENT_WITHDRAWN = "consent_withdrawn"
# The skip reason of delivery updates cancelled because the customer turned them off.
DELIVERY_UPDATES_OFF = "delivery_updates_off"


def unsubscribe_address(session: Session, store_id: int, email: str, reason: str, now: datetime,
                        detail: str | None = None, customer_id: int | None = None) -> int:
    """Suppress an address (and the unsubscribing customer's current one) and cancel what must not leave now.

    ``customer_id`` is the customer the unsubscribed message was for: a person who changed address since keeps
    getting nothing. Scheduled marketing goes at once (``unsubscribed``); scheduled service emails stay and are
    skipped as ``suppressed`` when due, so the merchant sees why; any email claimed but not handed over is cancelled.
    Returns how many messages were cancelled.
    """
    addresses = {normalize(email)}
    if customer_id is not None:
        current = session.scalar(select(Customer.email).where(Customer.id == customer_id,
                                                              Customer.store_id == store_id))
        if current:
            addresses.add(normalize(current))
    holders = {customer_id} if customer_id is not None else set()
    for address in addresses:
        holders.update(handover.address_holders(session, store_id, address))
    handover.lock_recipients(session, store_id, holders, addresses)
    for address in sorted(addresses):
        suppress(session, store_id, address, reason, detail=detail, now=now)
    to_them = or_(func.lower(Message.to_address).in_(sorted(addresses)), Message.customer_id.in_(sorted(holders)))
    return outbox.cancel(session, store_id, "unsubscribed", now, Message.channel == "email", to_them,
                         or_(Message.marketing.is_(True), Message.status == "sending"))


def withdraw_consent(session: Session, store_id: int, customer_id: int, reason: str, now: datetime) -> int:
    """Cancel a customer's marketing that has not left yet, after they withdrew consent; return how many."""
    return withdraw_consents(session, store_id, [customer_id], reason, now)


def withdraw_consents(session: Session, store_id: int, customer_ids: Iterable[int], reason: str,
                      now: datetime) -> int:
    """Cancel the marketing of customers who withdrew consent that has not left yet; return how many.

    The locks are taken in one call (see ``handover.lock_recipients``); taking them again after a writer
    already holds them in the same transaction waits for nothing.
    """
    ids = sorted(set(customer_ids))
    if not ids:
        return 0
    handover.lock_recipients(session, store_id, ids)
    return outbox.cancel(session, store_id, reason, now, Message.channel == "email",
                         Message.marketing.is_(True), Message.customer_id.in_(ids))


def stop_store(session: Session, store_id: int, reason: str, now: datetime) -> int:
    """Cancel every message of a store that has not left yet (uninstall); return how many."""
    handover.lock_store(session, store_id, exclusive=True)
    return outbox.cancel(session, store_id, reason, now)


def stop_delivery_updates(session: Session, store_id: int, email: str, now: datetime,
                          customer_id: int | None = None) -> int:
    """Turn delivery updates off for an address (one click from any delivery update) and cancel those not gone yet.

    Only delivery updates stop: the address stays free for the store's other mail (it unsubscribed from one kind).
    Taken under the same hand-over locks as an unsubscribe, so an update claimed meanwhile is cancelled too.
    """
    address = normalize(email)
    holders = {customer_id} if customer_id is not None else set()
    holders.update(handover.address_holders(session, store_id, address))
    handover.lock_recipients(session, store_id, holders, {address})
    turn_off_delivery_updates(session, store_id, address, now)
    to_them = or_(func.lower(Message.to_address) == address, Message.customer_id.in_(sorted(holders)))
    return outbox.cancel(session, store_id, DELIVERY_UPDATES_OFF, now, Message.channel == "email",
                         Message.flow == "delivery_update", to_them)
