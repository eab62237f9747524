"""What forbids messages at once — unsubscribes, suppressions, consent withdrawals, uninstall — each under the
hand-over locks, cancelling what has not left yet (plugin/messaging/handover.py explains the guarantee)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from plugin.messaging import handover, outbox
from plugin.messaging.policy import DELIVERY_FLOWS
from plugin.messaging.reasons import BOUNCED, COMPLAINED
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


# What a report that arrives after the send says about an address: the suppression reason and the cancel code.
UNDELIVERABLE = {"bounce": BOUNCED, "complaint": COMPLAINED}


@dataclass(frozen=True)
class Undeliverable:
    """What one hard bounce or complaint did: the stores it applied to, new suppressions, cancelled messages."""

    address: str
    kind: str
    store_ids: tuple[int, ...]
    suppressed: int
    cancelled: int


def senders_of(session: Session, email: str) -> list[int]:
    """Return the ids of the stores that handed an email to this address (the ones a report without our id is about)."""
    return sorted(session.scalars(
        select(Message.store_id).where(Message.channel == "email", func.lower(Message.to_address) == normalize(email),
                                       Message.handed_at.is_not(None)).distinct()))


def suppress_undeliverable(session: Session, email: str, kind: str, now: datetime, *, detail: str,
                           message_id: int | None = None) -> Undeliverable:
    """Suppress an address that hard-bounced or complained, at once, and cancel every email to it not yet handed over.

    ``message_id`` is our message the report names (a signed VERP return path, or our Message-ID in the
    provider's event): then only its store is concerned and the row records the outcome (a hard bounce turns
    ``sent`` into ``failed``; a complaint keeps ``sent``; both keep the reason code and the report's words).
    Without it, every store that handed an email to the address is, and each one's latest email to it records it.
    Not only marketing is cancelled: a dead or complaining address must get nothing more (``bounced`` /
    ``complained``). Rows claimed by a dispatcher but not past its last check are cancelled too; the locks are the
    ones that check takes (plugin/messaging/handover.py), so a message either left before this commits or never
    leaves. Calling it again changes nothing more.
    """
    if kind not in UNDELIVERABLE:
        raise ValueError(f"unknown undeliverable kind {kind!r}")
    address = normalize(email)
    message = session.get(Message, message_id) if message_id is not None else None
    store_ids = [message.store_id] if message is not None else senders_of(session, address)
    holders = {store_id: handover.address_holders(session, store_id, address) for store_id in store_ids}
    handover.lock_recipients_across(session, {store_id: (holders[store_id], [address]) for store_id in store_ids})
    code = UNDELIVERABLE[kind]
    suppressed = cancelled = 0
    for store_id in store_ids:
        suppressed += suppress(session, store_id, address, kind, detail=detail[:500], now=now)
        to_them = or_(func.lower(Message.to_address) == address, Message.customer_id.in_(holders[store_id]))
        cancelled += outbox.cancel(session, store_id, code, now, Message.channel == "email", to_them)
    if message is not None:
        _record(message, kind, code, detail, now)
    else:
        for store_id in store_ids:
            latest = session.scalar(select(Message).where(
                Message.store_id == store_id, Message.channel == "email", Message.handed_at.is_not(None),
                func.lower(Message.to_address) == address).order_by(Message.handed_at.desc(), Message.id.desc())
                .limit(1))
            if latest is not None:
                _record(latest, kind, code, f"{detail} (matched by address: the latest email to it)", now)
    return Undeliverable(address=address, kind=kind, store_ids=tuple(store_ids), suppressed=suppressed,
                         cancelled=cancelled)


def _record(message: Message, kind: str, code: str, detail: str, now: datetime) -> None:
    """Write a later bounce or complaint on the message it is about (once: a replay finds it there)."""
    if message.status not in ("sent", "failed") or message.skip_reason == code:
        return
    if kind == "bounce":
        message.status = "failed"
    message.skip_reason = code
    message.last_error = detail[:2000]
    message.updated_at = now


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
    # Every delivery message the switch covers (the send policy's DELIVERY_FLOWS), "we're on it" notices included.
    return outbox.cancel(session, store_id, DELIVERY_UPDATES_OFF, now, Message.channel == "email",
                         Message.flow.in_(sorted(DELIVERY_FLOWS)), to_them)
