"""Resending a skipped message: allowed once the skip's cause has gone away, never for a permanent cause.

Each reason code that can go away has a check that says whether its cause still holds today (the store was
reinstalled, the flow switched back on, consent given since, the suppression removed, the holdout share lowered
...). A resend is a new scheduled row; the dispatcher then runs the whole send policy on it again, so nothing
the policy refuses is ever forced out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from plugin import flow_settings
from plugin.config import Config
from plugin.flows import FLOWS
from plugin.flows.holdout import is_held_out
from plugin.messaging import reasons
from plugin.messaging.branding import has_postal_address
from plugin.messaging.suppression import is_suppressed
from plugin.models import Customer, Merchant, Message, Store


class _Facts:
    """What the checks read about a message, each looked up once."""

    def __init__(self, session: Session, config: Config, message: Message) -> None:
        self.session, self.config, self.message = session, config, message
        self.store = session.get(Store, message.store_id)
        self.customer = session.get(Customer, message.customer_id) if message.customer_id else None

    @property
    def address(self) -> str | None:
        """Return where the message would go: its own address, else the customer's."""
        return self.message.to_address or (self.customer.email if self.customer else None)

    def settings(self, section: str) -> dict[str, Any]:
        """Return the store's current settings of a section."""
        return flow_settings.effective(self.session, self.config, self.message.store_id, section)


def _store_gone(f: _Facts) -> bool:
    return f.store is None or not f.store.is_sending_allowed


def _flow_off(f: _Facts) -> bool:
    flow = FLOWS.get(f.message.flow)
    return not f.settings(flow.settings_section if flow else f.message.flow).get("enabled", True)


def _no_contact(f: _Facts) -> bool:
    return f.store is None or not f.store.protected_data_access or not f.address


def _no_consent(f: _Facts) -> bool:
    return f.customer is None or not f.customer.marketing_consent


def _suppressed(f: _Facts) -> bool:
    return not f.address or is_suppressed(f.session, f.message.store_id, f.address)


def _held_out(f: _Facts) -> bool:
    flow = FLOWS.get(f.message.flow)
    if flow is None or f.message.customer_id is None:
        return True
    # Flows without a holdout setting hold nobody out.
    percent = float(flow.settings.load(f.settings(flow.settings_section)).get("holdout_percent", 0))
    return is_held_out(f.message.store_id, f.message.customer_id, flow.name, percent)


def _no_merchant_address(f: _Facts) -> bool:
    merchant = f.session.get(Merchant, f.store.merchant_id) if f.store else None
    return merchant is None or not (merchant.alert_email or merchant.sender_email)


def _no_postal_address(f: _Facts) -> bool:
    return f.store is None or not has_postal_address(f.store)


def _passes(_f: _Facts) -> bool:
    # A cause of the moment: the send policy judges it again when the resent row is due.
    return False


CAUSE_HOLDS: dict[str, Callable[[_Facts], bool]] = {
    "store_not_installed": _store_gone,
    "store_uninstalled": _store_gone,
    "flow_disabled": _flow_off,
    reasons.NO_CONTACT_ACCESS: _no_contact,
    "no_address": lambda f: not f.address,
    "no_consent": _no_consent,
    "consent_withdrawn": _no_consent,
    "suppressed": _suppressed,
    "unsubscribed": _suppressed,
    reasons.HOLDOUT: _held_out,
    reasons.NO_MERCHANT_ADDRESS: _no_merchant_address,
    reasons.NO_POSTAL_ADDRESS: _no_postal_address,
    "frequency_cap": _passes,
    "template_error": _passes,
}


def cause_remains(session: Session, config: Config, message: Message) -> bool:
    """Say whether the reason the message was skipped still holds (always, for permanent or unknown reasons)."""
    code = reasons.code_of(message.skip_reason)
    check = CAUSE_HOLDS.get(code or "")
    if check is None or reasons.is_permanent(code):
        return True
    return check(_Facts(session, config, message))


def can_resend(session: Session, config: Config, message: Message) -> bool:
    """Say whether the merchant may queue this email again: it failed, or its skip's cause has gone away."""
    if message.channel != "email":
        return False
    if message.status == "failed":
        return True
    return message.status == "skipped" and not cause_remains(session, config, message)
