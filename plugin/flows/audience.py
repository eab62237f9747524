"""Audience conditions several flows share: which orders and customers may get a customer email at all."""

from __future__ import annotations

from datetime import datetime

from plugin.messaging import reasons


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
