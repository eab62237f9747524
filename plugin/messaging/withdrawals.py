"""What forbids messages at once — unsubscribes, suppressions, consent withdrawals, uninstall — each under the
hand-over locks, cancelling what has not left yet (plugin/messaging/handover.py explains the guarantee)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_
from sqlalchemy.orm import Session

from plugin.messaging import handover
from plugin.messaging.suppression import normalize, suppress
from plugin.models import Message


def unsubscribe_address(session: Session, store_id: int, email: str, reason: str, now: datetime,
                        detail: str | None = None) -> int:
    """Suppress an address and cancel what it must no longer get; return how many messages were cancelled.

    Scheduled marketing goes at once (``unsubscribed``); scheduled service emails stay and are skipped as
    ``suppressed`` when due, so the merchant sees why; any email already claimed but not handed over is cancelled.
    """
    address = normalize(email)
    holders = handover.lock_address_holders(session, store_id, address)
    suppress(session, store_id, address, reason, detail=detail, now=now)
    to_them = or_(func.lower(Message.to_address) == address, Message.customer_id.in_(holders)) if holders else \
        func.lower(Message.to_address) == address
    waiting_marketing = handover.cancel_unsent(session, store_id, "unsubscribed", now, Message.channel == "email",
                                               Message.marketing.is_(True), to_them)
    claimed = handover.cancel_unsent(session, store_id, "unsubscribed", now, Message.channel == "email",
                                     Message.status == "sending", to_them)
    return waiting_marketing + claimed


def withdraw_consent(session: Session, store_id: int, customer_id: int, reason: str, now: datetime) -> int:
    """Cancel a customer's marketing that has not left yet, after they withdrew consent; return how many."""
    handover.lock_recipients(session, store_id, [customer_id])
    return handover.cancel_unsent(session, store_id, reason, now, Message.channel == "email",
                                  Message.marketing.is_(True), Message.customer_id == customer_id)


def stop_store(session: Session, store_id: int, reason: str, now: datetime) -> int:
    """Cancel every message of a store that has not left yet (uninstall); return how many."""
    handover.lock_store(session, store_id, exclusive=True)
    return handover.cancel_unsent(session, store_id, reason, now)
