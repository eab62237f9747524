"""The send policy of DESIGN.md §5, checked at send time in exactly this order:

store installed and flow enabled → channel law → (marketing: the store's postal address) → consent and
suppression → (open complaint) → idempotency → frequency cap → send window in the customer's local time →
quiet days (holidays, Ramadan daytime) → language.

Each refusal is a stable machine code (stored in ``message.skip_reason``) with words for the admin
(``REASONS``). Window, holiday, Ramadan and open-complaint refusals move the message to its next allowed
slot (it stays ``scheduled``); the others skip it for good.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from plugin import flow_settings
from plugin.config import Config
from plugin.messaging import locales, reasons, sendtime
from plugin.messaging.branding import has_postal_address
from plugin.messaging.suppression import delivery_updates_off, is_suppressed
from plugin.models import HOLD_UNTIL_RESOLVED_SOURCES, Customer, Message, Order, Store, Ticket

# Codes and their words live in one list (plugin.messaging.reasons); the policy writes a subset of them.
REASONS: dict[str, str] = reasons.english()
log = logging.getLogger("aftercare.messaging.policy")

RESCHEDULE = frozenset({"outside_window", "holiday", "ramadan_daytime", "open_complaint", "quiet_hours",
                        "open_delivery_problem"})
# Emails to the merchant, not to customers: no consent, window or language rules apply.
MERCHANT_FLOWS = frozenset({"ticket_alert", "test"})
# Transactional delivery updates: several per order, held by the flow's quiet hours instead of the send window.
DELIVERY_FLOW = "delivery_update"
# The delivery messages one click turns off, and that quiet hours hold: updates and "we're on it" notices.
DELIVERY_FLOWS = frozenset({DELIVERY_FLOW, "delivery_stalls"})
# Emails sent because of an order: skipped once the order is cancelled, refunded or returned.
ORDER_FLOWS = frozenset({"review_request", "survey", "first_order", "usage_guide"})
COMPLAINT_RECHECK = timedelta(hours=6)
# First key of the PostgreSQL advisory lock that serialises frequency-cap checks per customer.
CAP_LOCK_NAMESPACE = 0x41435031  # "ACP1"


# The relay address Amazon gives a buyer (…@marketplace.amazon.com, .co.uk, .de, .co.jp ...): Shopify orders that
# Amazon's sales channel or a marketplace connector imports carry it, and Amazon buyers get no email from us.
AMAZON_RELAY = re.compile(r"@marketplace\.amazon\.[a-z]{2,3}(\.[a-z]{2})?$", re.IGNORECASE)


def is_amazon_relay(address: str) -> bool:
    """Say whether an email address is an Amazon buyer's relay address."""
    return AMAZON_RELAY.search(address.strip()) is not None


@dataclass(frozen=True)
class Decision:
    """What to do with a due message: ``send``, ``skip`` (for good) or ``reschedule`` to ``at``."""

    action: str
    reason: str | None = None
    at: datetime | None = None
    locale: str = locales.DEFAULT
    address: str | None = None

    @property
    def words(self) -> str:
        """Return the reason in words for the admin."""
        return REASONS.get(self.reason or "", "")


def _skip(reason: str) -> Decision:
    return Decision("skip", reason)


def evaluate(session: Session, config: Config, message: Message, now: datetime,
             settings_cache: dict[tuple[int, str], dict[str, Any]] | None = None) -> Decision:
    """Decide whether ``message`` may go out at ``now`` (checks run in DESIGN §5 order).

    ``settings_cache`` lets one dispatch run read each store's flow settings once.
    """
    store = session.get(Store, message.store_id)
    if store is None or not store.is_sending_allowed:
        return _skip("store_not_installed")
    cache = settings_cache if settings_cache is not None else {}

    def settings_of(flow: str) -> dict[str, Any]:
        if (store.id, flow) not in cache:
            cache[(store.id, flow)] = flow_settings.effective(session, config, store.id, flow)
        return cache[(store.id, flow)]

    if not settings_of(message.flow).get("enabled", True):
        return _skip("flow_disabled")
    policy = settings_of("policy")

    # Channel law (DESIGN §1): Amazon buyers only get Amazon's own messages, never email or marketing. It is about
    # buyers: the merchant's own alerts and test sends go to the merchant, whatever the store's platform.
    if store.platform == "amazon" and message.flow not in MERCHANT_FLOWS and (message.channel == "email"
                                                                              or message.marketing):
        return _skip("channel_not_allowed")
    # CAN-SPAM: a commercial email carries the sender's postal address, so none leaves while the store has none.
    # Transactional, service, review-request and feedback mail still go (and carry it once there is one).
    if message.marketing and message.flow not in MERCHANT_FLOWS and not has_postal_address(store):
        return _skip(reasons.NO_POSTAL_ADDRESS)
    if message.channel != "email":
        return Decision("send", locale=message.locale or locales.DEFAULT)

    fallback = str(policy.get("fallback_locale") or locales.DEFAULT)
    if message.flow in MERCHANT_FLOWS:
        if not message.to_address:
            return _skip("no_address")
        if is_suppressed(session, store.id, message.to_address):
            return _skip("suppressed")
        return Decision("send", locale=locales.choose(message.locale, store.primary_locale, fallback),
                        address=message.to_address)

    customer = session.get(Customer, message.customer_id) if message.customer_id else None
    if customer is not None and customer.redacted_at is not None:
        return _skip("customer_redacted")
    address = message.to_address or (customer.email if customer else None)
    if not store.protected_data_access:
        return _skip("no_contact_access")
    if not address:
        return _skip("no_address")
    if is_amazon_relay(address):
        # An order Amazon's sales channel put into the Shopify store: its buyer is an Amazon buyer (DESIGN §1).
        return _skip("channel_not_allowed")
    if message.marketing and not (customer is not None and customer.marketing_consent):
        return _skip("no_consent")
    if is_suppressed(session, store.id, address):
        return _skip("suppressed")
    if message.flow in DELIVERY_FLOWS and delivery_updates_off(session, store.id, address):
        return _skip("delivery_updates_off")

    if message.flow in DELIVERY_FLOWS and message.order_id:
        order = session.get(Order, message.order_id)
        if order is not None and order.cancelled_at is not None:
            return _skip("order_cancelled")
    if message.flow in ORDER_FLOWS and message.order_id:
        order = session.get(Order, message.order_id)
        if order is not None and (order.cancelled_at is not None or order.refunded or order.returned):
            return _skip("order_cancelled")
    if message.flow == "review_request" and customer is not None:
        held_since = now - timedelta(days=float(settings_of(message.flow).get("complaint_hold_days", 14)))
        if _open_complaint(session, store.id, customer.id, opened_after=held_since):
            # Service first, then ask: look again later rather than dropping the request (DESIGN §4).
            return Decision("reschedule", "open_complaint", at=now + COMPLAINT_RECHECK)
    if message.flow == "survey" and message.step == "main" and customer is not None and \
            _open_complaint(session, store.id, customer.id, source="delivery"):
        # A survey about an order whose delivery went wrong waits like a review request (plugin.flows.survey).
        return Decision("reschedule", "open_delivery_problem", at=now + COMPLAINT_RECHECK)

    if _already_sent(session, message):
        return _skip("duplicate")
    if message.marketing and _over_cap(session, message, policy, now):
        return _skip("frequency_cap")

    zone = sendtime.resolve_zone(customer.time_zone if customer else None,
                                 (customer.country if customer else None) or store.country, store.timezone)
    # A customer without a country but in, say, Asia/Riyadh gets Saudi Arabia's rules, not the store's.
    country = sendtime.customer_country(customer.country if customer else None,
                                        customer.time_zone if customer else None, store.country)
    ramadan_countries = {c.upper() for c in policy.get("ramadan_countries", []) or []}
    rules = sendtime.WindowRules(
        start=_hhmm(policy, "send_window_start", "09:00"),
        end=_hhmm(policy, "send_window_end", "11:00"),
        respect_holidays=bool(policy.get("respect_holidays", True)),
        ramadan=bool(message.marketing and country and country.upper() in ramadan_countries),
        ramadan_daytime_start=_hhmm(policy, "ramadan_daytime_start", "05:00"),
        ramadan_daytime_end=_hhmm(policy, "ramadan_daytime_end", "19:00"),
    )
    if message.flow in DELIVERY_FLOWS:
        # Quiet hours, not the marketing send window; "out for delivery" is news only today (DESIGN §4's class).
        flow = settings_of(DELIVERY_FLOW)
        rules = sendtime.WindowRules(start=_hhmm(flow, "quiet_hours_end", "08:00"),
                                     end=_hhmm(flow, "quiet_hours_start", "21:00"), respect_holidays=False)
        if (message.payload or {}).get("urgent"):
            rules = None
    slot = sendtime.next_slot(now, zone, country, rules) if rules is not None else sendtime.Slot(now, None)
    if slot.at > now:
        reason = "quiet_hours" if message.flow in DELIVERY_FLOWS else slot.reason or "outside_window"
        return Decision("reschedule", reason, at=slot.at)

    locale = locales.choose(message.locale or (customer.locale if customer else None), store.primary_locale,
                            fallback)
    return Decision("send", locale=locale, address=address)


def _hhmm(policy: dict[str, Any], key: str, default: str) -> time:
    """Read an HH:MM setting; a malformed one falls back to the default (logged) instead of blocking the queue."""
    try:
        return sendtime.parse_hhmm(str(policy.get(key, default)))
    except ValueError:
        log.warning("malformed send-window setting ignored", extra={"setting": key, "value": policy.get(key)})
        return sendtime.parse_hhmm(default)


def _open_complaint(session: Session, store_id: int, customer_id: int, source: str | None = None,
                    opened_after: datetime | None = None) -> bool:
    query = select(func.count(Ticket.id)).where(
        Ticket.store_id == store_id, Ticket.customer_id == customer_id, Ticket.status == "open")
    if opened_after is not None:
        # A review request waits for a complaint only so long: an unresolved one must not decide who is asked.
        query = query.where(or_(Ticket.source.in_(HOLD_UNTIL_RESOLVED_SOURCES), Ticket.opened_at > opened_after))
    if source is not None:
        query = query.where(Ticket.source == source)
    return session.scalar(query) > 0


def _already_sent(session: Session, message: Message) -> bool:
    """Say whether the same flow step already went out for the same order (under any key).

    Delivery updates are once per parcel and milestone (parcel_notice), several per order. A message about a
    ticket is unique by its ticket (its key): two tickets of one order each get their follow-up.
    """
    if message.order_id is None or message.flow == DELIVERY_FLOW or message.ticket_id is not None:
        return False
    query = select(func.count(Message.id)).where(
        Message.store_id == message.store_id, Message.flow == message.flow, Message.step == message.step,
        Message.order_id == message.order_id, Message.id != message.id, Message.status.in_(("sent", "sending")))
    if message.product_id is not None:
        query = query.where(Message.product_id == message.product_id)
    return session.scalar(query) > 0


def _lock_customer_cap(session: Session, customer_id: int) -> None:
    """Hold this customer's cap lock until the claim transaction ends (PostgreSQL; SQLite needs none).

    Dispatchers claim different rows (SKIP LOCKED), so two of them can each hold a marketing email for the
    same customer; both would count what is committed, see one below the cap, and both send. With the lock,
    the second waits until the first commits its claim (``sending``), and its count — a new snapshot under
    READ COMMITTED — then includes it. An advisory lock, not ``customer ... FOR UPDATE``: it serialises only
    cap checks, never the sync or compliance jobs writing the customer row (and so cannot deadlock with them).
    SQLite needs nothing: ``BEGIN IMMEDIATE`` (plugin/db.py) already runs claim transactions one at a time.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    # Two int4 keys: a namespace of our own and the id folded into int4 (a collision only makes two
    # customers' checks wait for each other; it never lets one through).
    folded = (customer_id + 2**31) % 2**32 - 2**31
    session.execute(select(func.pg_advisory_xact_lock(CAP_LOCK_NAMESPACE, folded)))


def _over_cap(session: Session, message: Message, policy: dict[str, Any], now: datetime) -> bool:
    """Count marketing emails sent (or being sent) to this customer within the cap's period."""
    cap = int(policy.get("marketing_cap_count", 2))
    since = now - timedelta(days=float(policy.get("marketing_cap_days", 7)))
    if message.customer_id is None:
        return False
    _lock_customer_cap(session, message.customer_id)
    count = session.scalar(select(func.count(Message.id)).where(
        Message.store_id == message.store_id, Message.customer_id == message.customer_id,
        Message.marketing.is_(True), Message.channel == "email", Message.id != message.id,
        or_((Message.status == "sent") & (Message.sent_at >= since),
            (Message.status == "sending") & (Message.claimed_at >= since))))
    return count >= cap
