"""The hand-over guard: the dispatcher's last look before a message leaves, and the locks it shares with the
actions that can forbid a message (DESIGN.md §5).

The send policy decides at claim time, but a claimed message still waits for its connection (SMTP connect,
EHLO, STARTTLS, AUTH), for a Shopify discount code, or for the previous message of its batch. An unsubscribe,
a suppression, a consent withdrawal, an uninstall or a redaction can commit in that gap. So, immediately before a
channel hands a message over, ``final_check`` runs one short transaction that

1. takes the store's lock (shared) and the recipient's locks (customer and address, exclusive),
2. re-reads the message row (``FOR UPDATE``): it must still be ``sending`` under this dispatcher's claim,
3. re-checks store installed, flow enabled, the store's postal address (marketing), redaction, marketing consent
   and suppression, and
4. on success stamps ``handed_at``; on failure records the skip with its reason code.

Every action that can forbid a message takes the same locks (``lock_recipients`` / ``lock_store``) and cancels
the rows it forbids that are not yet handed over (``outbox.cancel``: ``scheduled``, and ``sending`` with no
``handed_at``). The two transactions are serialised by the locks, so either the action commits first and the check
sees it, or the check commits first and the message was already on its way. What remains is the gap between this
check and the server accepting the message (for email: MAIL FROM, RCPT TO and DATA on an open connection).

PostgreSQL: transaction-scoped advisory locks (``pg_advisory_xact_lock``), taken in one global order so two
transactions never wait for each other in a circle. SQLite: every transaction starts with ``BEGIN IMMEDIATE``
(plugin/db.py), which already runs writers one at a time, so no lock call is needed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Connection, bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from plugin import flow_settings
from plugin.config import Config
from plugin.messaging.reasons import NO_POSTAL_ADDRESS
from plugin.messaging.suppression import digest, normalize
from plugin.models import Customer, FlowSettings, Message, Order, Store, Suppression

# First keys of the advisory locks (two int4 keys each); distinct from the frequency cap's namespace.
STORE_LOCK = 0x41434853  # "ACHS"
CUSTOMER_LOCK = 0x41434843  # "ACHC"
ADDRESS_LOCK = 0x41434841  # "ACHA"
# Emails to the merchant: they have no customer consent to lose and are never marketing.
MERCHANT_FLOWS = frozenset({"ticket_alert", "test"})
NOT_OURS = "not_ours"
# Messages about one order: none goes out once the order is cancelled, refunded or returned.
ORDER_FLOWS = frozenset({"review_request", "survey", "amazon_review_request", "first_order", "usage_guide"})


class HandOverRefused(Exception):
    """The last check refused the message: it is not sent (the outcome is already recorded)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _int4(value: int) -> int:
    return (value + 2**31) % 2**32 - 2**31


def _address_key(store_id: int, email: str) -> int:
    digest = hashlib.sha256(f"{store_id}:{normalize(email)}".encode()).digest()
    return int.from_bytes(digest[:4], "big", signed=True)


def _postgres(session: Session | Connection) -> bool:
    bind = session if isinstance(session, Connection) else session.get_bind()
    return bind.dialect.name == "postgresql"


def lock_store(session: Session, store_id: int, *, exclusive: bool) -> None:
    """Hold the store's hand-over lock to the end of the transaction: shared for a check, exclusive for uninstall."""
    if not _postgres(session):
        return
    lock = func.pg_advisory_xact_lock if exclusive else func.pg_advisory_xact_lock_shared
    session.execute(select(lock(STORE_LOCK, _int4(store_id))))


def _recipient_keys(store_id: int, customer_ids: Iterable[int | None], emails: Iterable[str | None]
                    ) -> set[tuple[int, int]]:
    return ({(CUSTOMER_LOCK, _int4(cid)) for cid in customer_ids if cid is not None}
            | {(ADDRESS_LOCK, _address_key(store_id, e)) for e in emails if e})


def _recipient_locks(store_id: int, customer_ids: Iterable[int | None], emails: Iterable[str | None]) -> list[Any]:
    """Return the lock calls of these customers and addresses in the one global order every taker uses."""
    keys = sorted(_recipient_keys(store_id, customer_ids, emails))
    return [func.pg_advisory_xact_lock(namespace, key) for namespace, key in keys]


def lock_recipients(session: Session, store_id: int, customer_ids: Iterable[int | None] = (),
                    emails: Iterable[str | None] = ()) -> None:
    """Hold the hand-over locks of these customers and addresses to the end of the transaction (sorted order).

    Take them all in one call: a second call in the same transaction could take a key out of order and
    deadlock with a check that holds it.
    """
    if not _postgres(session):
        return
    calls = _recipient_locks(store_id, customer_ids, emails)
    if calls:
        session.execute(select(*calls))


def lock_recipients_across(session: Session, recipients: dict[int, tuple[Iterable[int | None], Iterable[str | None]]]
                           ) -> None:
    """Hold the hand-over locks of recipients in several stores ({store id: (customer ids, emails)}), in one call.

    One sorted call for all stores, for the same reason as ``lock_recipients``: a bounce names an address that
    several stores may have mailed.
    """
    if not _postgres(session):
        return
    calls = {(namespace, key) for store_id, (customer_ids, emails) in recipients.items()
             for namespace, key in _recipient_keys(store_id, customer_ids, emails)}
    if calls:
        session.execute(select(*[func.pg_advisory_xact_lock(namespace, key) for namespace, key in sorted(calls)]))


def address_holders(session: Session, store_id: int, email: str) -> list[int]:
    """Return the ids of the store's customers who have this address now."""
    return list(session.scalars(select(Customer.id).where(Customer.store_id == store_id,
                                                          func.lower(Customer.email) == normalize(email))))


@dataclass(frozen=True)
class Claim:
    """What the last check needs to know of a claimed message (fixed at claim time)."""

    message_id: int
    store_id: int
    customer_id: int | None
    address: str | None
    flow: str
    channel: str
    marketing: bool

    @classmethod
    def of(cls, message: Message, address: str | None) -> Claim:
        """Describe a message just claimed, with the address the policy chose."""
        return cls(message.id, message.store_id, message.customer_id, address or message.to_address, message.flow,
                   message.channel, bool(message.marketing))


def final_check(session: Session | Connection, config: Config, claim: Claim, worker_id: str, now: datetime
                ) -> str | None:
    """Check once more, under the locks, that the message may leave; stamp ``handed_at`` or return the reason.

    Returns None when the channel may hand it over now, ``NOT_OURS`` when the row is no longer this dispatcher's
    claim (an action cancelled it, or the claim was reconciled), or a skip reason code (already recorded).
    When every rule holds (the common case) this is one prepared conditional write: it runs for every message.
    """
    _take_locks(session, claim)
    plain, hashed = (normalize(claim.address), digest(claim.address)) if claim.address else ("", "")
    facts = {"message_id": claim.message_id, "sid": claim.store_id, "flow_name": claim.flow, "plain": plain,
             "hashed": hashed, "worker": worker_id, "now": now}
    # The common case in one statement: every condition holds, so the row is stamped at once.
    if claim.channel != "email" or claim.address:
        fast = {**facts, "is_merchant": claim.flow in MERCHANT_FLOWS, "is_marketing": claim.marketing,
                "is_email": claim.channel == "email", "is_order": claim.flow in ORDER_FLOWS,
                "default_enabled": bool(flow_settings.defaults(config, claim.flow).get("enabled", True))}
        if session.execute(_HAND_OVER_IF_ALLOWED, fast).rowcount == 1:
            return None
    # Something refused it (or it is no longer ours): read the facts to record the reason.
    row = session.execute(_STATE, facts).one_or_none()
    if row is None or row.status != "sending" or row.claimed_by != worker_id:
        return NOT_OURS
    reason = _refusal(row, claim, config)
    if reason is None:
        done = session.execute(_HAND_OVER, facts).rowcount
    else:
        done = session.execute(_WITHHOLD, {**facts, "reason": reason}).rowcount
    return reason if done == 1 else NOT_OURS


def _take_locks(session: Session | Connection, claim: Claim) -> None:
    """Take the store's shared lock and the recipient's locks in one round trip (the order lock_* use)."""
    if not _postgres(session):
        return
    session.execute(select(func.pg_advisory_xact_lock_shared(STORE_LOCK, _int4(claim.store_id)),
                           *_recipient_locks(claim.store_id, [claim.customer_id], [claim.address])))


# The message's claim, its store, its flow's switch, its customer and its address's suppression, in one read.
# An order that is cancelled, refunded or returned is left out of every order flow (DESIGN §4).
_ORDER_LEFT = or_(Order.cancelled_at.is_not(None), Order.refunded.is_(True), Order.returned.is_(True))
_STATE = (
    select(Message.status, Message.claimed_by, Store.status.label("store_status"), Store.uninstalled_at,
           Store.postal_address,
           select(FlowSettings.enabled).where(FlowSettings.store_id == bindparam("sid"),
                                              FlowSettings.flow == bindparam("flow_name"))
           .scalar_subquery().label("enabled"),
           select(Suppression.id).where(Suppression.store_id == bindparam("sid"),
                                        Suppression.email.in_([bindparam("plain"), bindparam("hashed")]))
           .limit(1).exists().label("suppressed"),
           Customer.redacted_at, Customer.marketing_consent, Customer.email, _ORDER_LEFT.label("order_left"))
    .join(Store, Store.id == Message.store_id)
    .join(Customer, Customer.id == Message.customer_id, isouter=True)
    .join(Order, Order.id == Message.order_id, isouter=True)
    .where(Message.id == bindparam("message_id")))
_OURS = (Message.id == bindparam("message_id"), Message.status == "sending", Message.claimed_by == bindparam("worker"))
_HAND_OVER = (update(Message).where(*_OURS).values(handed_at=bindparam("now"))
              .execution_options(synchronize_session=False))
_FLAG = {name: bindparam(f"is_{name}", type_=Boolean) for name in ("merchant", "marketing", "email", "order")}
_FLAG["default_enabled"] = bindparam("default_enabled", type_=Boolean)
_CUSTOMER = select(Customer.id).where(Customer.id == Message.customer_id)
# Marketing needs the store's postal address (CAN-SPAM); merchant emails and other classes never do.
_HAS_ADDRESS = func.coalesce(func.trim(Store.postal_address), "") != ""
# The same rules as _refusal, as one conditional write (kept equal by tests/messaging/test_handover_races.py,
# where every refusal goes through the slow path and every pass through this one).
_HAND_OVER_IF_ALLOWED = (
    update(Message).where(
        *_OURS,
        select(Store.id).where(Store.id == Message.store_id, Store.status == "active",
                               Store.uninstalled_at.is_(None),
                               or_(_FLAG["merchant"], ~_FLAG["marketing"], _HAS_ADDRESS)).exists(),
        func.coalesce(select(FlowSettings.enabled).where(FlowSettings.store_id == bindparam("sid"),
                                                         FlowSettings.flow == bindparam("flow_name"))
                      .scalar_subquery(), _FLAG["default_enabled"]).is_(True),
        or_(_FLAG["merchant"], ~_CUSTOMER.where(Customer.redacted_at.is_not(None)).exists()),
        or_(~_FLAG["order"], ~select(Order.id).where(Order.id == Message.order_id, _ORDER_LEFT).exists()),
        or_(_FLAG["merchant"], ~_FLAG["marketing"], _CUSTOMER.where(Customer.marketing_consent.is_(True)).exists()),
        or_(~_FLAG["email"], ~select(Suppression.id).where(
            Suppression.store_id == bindparam("sid"),
            Suppression.email.in_([bindparam("plain"), bindparam("hashed")])).exists()))
    .values(handed_at=bindparam("now")).execution_options(synchronize_session=False))
_WITHHOLD = (update(Message).where(*_OURS)
             .values(status="skipped", skip_reason=bindparam("reason"), claimed_by=None, updated_at=bindparam("now"))
             .execution_options(synchronize_session=False))


def _refusal(row: Any, claim: Claim, config: Config) -> str | None:
    if row.store_status != "active" or row.uninstalled_at is not None:
        return "store_not_installed"
    enabled = row.enabled if row.enabled is not None else flow_settings.defaults(config, claim.flow).get("enabled",
                                                                                                        True)
    if not enabled:
        return "flow_disabled"
    if claim.flow in MERCHANT_FLOWS:
        return "suppressed" if claim.channel == "email" and row.suppressed else None
    if claim.marketing and not (row.postal_address or "").strip():
        return NO_POSTAL_ADDRESS
    if row.redacted_at is not None:
        return "customer_redacted"
    if claim.flow in ORDER_FLOWS and row.order_left:
        return "order_cancelled"
    if claim.marketing and not row.marketing_consent:
        return "no_consent"
    if claim.channel == "email":
        if not (claim.address or row.email):
            return "no_address"
        if row.suppressed:
            return "suppressed"
    return None


def checker(run_check: Callable[[], str | None]) -> Callable[[], None]:
    """Wrap a check so that a channel calls ``check()`` and a refusal raises HandOverRefused."""

    def check() -> None:
        reason = run_check()
        if reason is not None:
            raise HandOverRefused(reason)

    return check
