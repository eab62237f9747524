"""Audience conditions several flows share: which orders and customers may get a customer email at all."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import or_

from plugin import flow_settings
from plugin.flows.base import FlowRun
from plugin.messaging import reasons
from plugin.models import Order

POLICY_SECTION = "policy"


def history_cutoff(run: FlowRun) -> datetime | None:
    """Return the moment before which the store's orders are never messaged about, or None for no such moment.

    It is the store's latest reinstall (``store.reinstalled_at``): uninstalling erases the message log 48 hours
    later (shop/redact, https://shopify.dev/docs/apps/build/privacy-law-compliance), so a reinstall cannot know
    whom it already asked, and asks nobody about an older order unless the merchant turned
    ``message_orders_before_reinstall`` on. A shop's first install has none: the flows' own age limits decide
    which backfilled orders are still asked.
    """
    if run.store.reinstalled_at is None:
        return None
    policy = flow_settings.effective(run.session, run.config, run.store.id, POLICY_SECTION)
    return None if policy.get("message_orders_before_reinstall") else run.store.reinstalled_at


def contact_reason(email: str | None, contact_granted: bool) -> str | None:
    """Return ``no_contact_access`` when the app cannot email the customer, else None."""
    if not email or not contact_granted:
        return reasons.NO_CONTACT_ACCESS
    return None


def order_skip_reason(cancelled_at: datetime | None, refunded: bool, returned: bool, email: str | None,
                      contact_granted: bool) -> str | None:
    """Return why an order's customer email is skipped (cancelled, refunded, returned, no contact), or None."""
    if cancelled_at is not None:
        return reasons.ORDER_CANCELLED
    if refunded:
        return reasons.ORDER_REFUNDED
    if returned:
        return reasons.ORDER_RETURNED
    return contact_reason(email, contact_granted)


def left_since(cutoff: datetime | None) -> tuple[Any, ...]:
    """Return the conditions keeping only orders neither fulfilled nor delivered before ``cutoff`` (none for None)."""
    if cutoff is None:
        return ()
    return (or_(Order.fulfilled_at.is_(None), Order.fulfilled_at >= cutoff),
            or_(Order.delivered_at.is_(None), Order.delivered_at >= cutoff))
