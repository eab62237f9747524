"""Win-back: a "we miss you" email with a spend-X-save-Y code when a customer goes dormant, one reminder (marketing).

A customer becomes dormant ``dormant_after_days`` after their last order that was not cancelled (the dormancy
moment). The flow runs hourly:

- **main**: customers whose dormancy moment fell within the last ``ENTRY_WINDOW_DAYS`` (a week, so a few days
  of downtime lose nobody). Found set-based from the orders placed in that week only (an order that no later
  counted order of its customer supersedes is their last), never by grouping the whole history, so a run reads
  that week's orders and one index probe each; new orders, cancellations and settings changes need no state.
  Customers dormant for longer were dormant before the flow could reach them: they
  enter only through the **backfill** (``backfill_enabled``), most recently lapsed first, until the day's
  (UTC) win-back emails reach ``backfill_daily_cap`` — the pace a merchant sets when first switching it on.
  Nobody enters again within ``reentry_days`` of their last entry (held-out entries count).
- **reminder**: ``reminder_delay_days`` after the main email was sent, when they have not ordered since, with
  the same code (it is not created twice).
- **exit**: any order after the one they lapsed from cancels what is still planned (reason ``ordered_again``).

The code is a fixed ``save_amount`` off with a minimum subtotal of ``spend_amount``, in the store's currency,
single-use and for this customer only; the email channel creates it through Shopify's
``discountCodeBasicCreate`` just before the email leaves, named from the message's idempotency key, so a
retried dispatch meets Shopify's ``TAKEN`` for its own code and never makes a second one. Consent, suppression,
frequency cap and send window are the send policy's, at send time. Products bought by customers like them
(plugin.recommendations) are shown in the email.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import aliased

from plugin import flow_schemas
from plugin.flows.audience import contact_reason
from plugin.flows.base import Exit, Flow, FlowRun, Rows, Step
from plugin.messaging import outbox, reasons
from plugin.messaging.outbox import message_row
from plugin.models import Customer, Message, Order

NAME = "winback"
ENTRY_WINDOW_DAYS = 7
# A reminder whose time passed more than this long ago (the job was down) is not sent late.
MAX_LATE_DAYS = 30


def _entries(run: FlowRun, newest: Any, oldest: Any | None, limit: int | None) -> list[Any]:
    """Return (customer, last order, its time) of customers whose last order lies in (oldest, newest], not re-entering.

    Set-based from the orders of the range only: an order is a customer's last counted one when no other counted
    order of theirs is later (equal times: the higher id is the last), so a run never reads the whole history.
    Orders come through ``ix_orders_store_created`` (newest first, so the backfill's LIMIT stops early), the
    "later order" probe through ``ix_orders_store_customer_created``.
    """
    store_id = run.store.id
    order, later = aliased(Order), aliased(Order)
    superseded = exists().where(
        later.store_id == store_id, later.customer_id == order.customer_id, later.cancelled_at.is_(None),
        later.created_at_remote >= order.created_at_remote,
        or_(later.created_at_remote > order.created_at_remote, later.id > order.id))
    recent = run.now - timedelta(days=run.settings["reentry_days"])
    entered = exists().where(Message.store_id == store_id, Message.customer_id == order.customer_id,
                             Message.flow == NAME, Message.step == "main", Message.created_at > recent)
    counted: Any = order.cancelled_at.is_(None)
    if run.session.get_bind().dialect.name == "sqlite":
        # Nearly every order is not cancelled, but SQLite's statistics count NULLs as distinct values and would
        # walk ix_orders_store_cancelled (every order, then a sort); likely() keeps it on the creation-time range.
        counted = func.likely(counted)
    query = (select(order.customer_id.label("cid"), order.id.label("oid"), order.created_at_remote.label("last_at"),
                    Customer.email, Customer.locale, Customer.redacted_at)
             .join(Customer, Customer.id == order.customer_id)
             .where(order.store_id == store_id, order.customer_id.is_not(None), counted,
                    order.created_at_remote <= newest, ~superseded, ~entered)
             .order_by(order.created_at_remote.desc(), order.id.desc()))
    if oldest is not None:
        query = query.where(order.created_at_remote > oldest)
    if limit is not None:
        query = query.limit(limit)
    return list(run.session.execute(query))


def _rows(run: FlowRun, entries: list[Any], backfill: bool) -> Rows:
    settings, store = run.settings, run.store
    rows = []
    for row in entries:
        reason = contact_reason(row.email, store.protected_data_access) if row.redacted_at is None \
            else "customer_redacted"
        extra: dict[str, Any] = {"status": "skipped", "skip_reason": reason} if reason else {}
        payload = {"discount_amount": settings["save_amount"], "discount_min_subtotal": settings["spend_amount"],
                   "discount_valid_days": settings["code_valid_days"], "currency": store.currency,
                   "recommendations": settings["recommendations"], "last_order_at": row.last_at.isoformat(),
                   "backfill": backfill}
        rows.append(message_row(store_id=store.id, flow=NAME, step="main",
                                key_parts=(f"customer={row.cid}", f"order={row.oid}"), scheduled_for=run.now,
                                customer_id=row.cid, order_id=row.oid, locale=row.locale, marketing=True,
                                to_address=row.email if store.protected_data_access else None, payload=payload,
                                **extra))
    return rows


def due_winbacks(run: FlowRun) -> Rows:
    """Return the "we miss you" rows: newly dormant customers, then (when on) the paced backfill of older ones."""
    dormant = timedelta(days=run.settings["dormant_after_days"])
    newest = run.now - dormant
    window = newest - timedelta(days=ENTRY_WINDOW_DAYS)
    rows = _rows(run, _entries(run, newest, window, None), backfill=False)
    if run.settings["backfill_enabled"]:
        day = run.now.replace(hour=0, minute=0, second=0, microsecond=0)
        today = run.session.scalar(select(func.count()).select_from(Message).where(
            Message.store_id == run.store.id, Message.flow == NAME, Message.step == "main",
            Message.created_at >= day)) or 0
        room = run.settings["backfill_daily_cap"] - today - len(rows)
        if room > 0:
            rows += _rows(run, _entries(run, window, None, room), backfill=True)
    return rows


def due_reminders(run: FlowRun) -> Rows:
    """Return reminders ``reminder_delay_days`` after a sent win-back, for customers who have not ordered since."""
    delay = timedelta(days=run.settings["reminder_delay_days"])
    main = aliased(Message)
    reminded = exists().where(Message.store_id == run.store.id, Message.flow == NAME, Message.step == "reminder",
                              Message.customer_id == main.customer_id, Message.order_id == main.order_id)
    ordered = exists().where(Order.store_id == run.store.id, Order.customer_id == main.customer_id,
                             Order.cancelled_at.is_(None), Order.created_at_remote > main.sent_at)
    query = (select(main.customer_id, main.order_id, main.payload, Customer.email, Customer.locale)
             .join(Customer, Customer.id == main.customer_id)
             .where(main.store_id == run.store.id, main.flow == NAME, main.step == "main", main.status == "sent",
                    main.sent_at <= run.now - delay, main.sent_at > run.now - delay - timedelta(days=MAX_LATE_DAYS),
                    ~reminded, ~ordered)
             .order_by(main.id))
    rows = []
    store = run.store
    for customer_id, order_id, payload, email, locale in run.session.execute(query):
        reason = contact_reason(email, store.protected_data_access)
        extra: dict[str, Any] = {"status": "skipped", "skip_reason": reason} if reason else {}
        carried = {k: v for k, v in (payload or {}).items() if k != "vars"}
        # The main email created the code: the reminder shows it and never creates another.
        carried["discount_created"] = bool(carried.get("discount_code"))
        rows.append(message_row(store_id=store.id, flow=NAME, step="reminder",
                                key_parts=(f"customer={customer_id}", f"order={order_id}"), scheduled_for=run.now,
                                customer_id=customer_id, order_id=order_id, locale=locale, marketing=True,
                                to_address=email if store.protected_data_access else None, payload=carried, **extra))
    return rows


def cancel_ordered_again(run: FlowRun) -> int:
    """Cancel planned win-back rows of customers who ordered after the order they lapsed from."""
    anchor = aliased(Order)
    later = aliased(Order)
    ordered = (select(later.id).join(anchor, anchor.id == Message.order_id)
               .where(later.store_id == run.store.id, later.customer_id == Message.customer_id,
                      later.cancelled_at.is_(None), later.created_at_remote > anchor.created_at_remote)
               .exists())
    return outbox.cancel(run.session, run.store.id, reasons.ORDERED_AGAIN, run.now,
                         and_(Message.flow == NAME, ordered))


FLOW = Flow(
    name=NAME,
    title="Win-back",
    about="Win dormant customers back with a spend-X-save-Y code and products they may like.",
    flow_class="marketing",
    platforms=("shopify",),
    trigger="due query: customers whose last order was dormant_after_days ago (and, when on, a paced backfill)",
    audience=("customers with no order for dormant_after_days", "marketing consent (checked at send time)",
              "not entered within reentry_days"),
    timing="at the dormancy moment, in the send window; reminder reminder_delay_days after the first email",
    steps=(
        Step("main", due_winbacks, "\"we miss you\" with a welcome-back code and recommendations", template="main",
             counter="entered", not_sent_counter="not_sent"),
        Step("reminder", due_reminders, "one reminder while the code is unused", template="reminder",
             counter="reminders", when="reminder_enabled"),
    ),
    exits=(
        Exit(reasons.ORDERED_AGAIN, "the customer placed an order: planned win-back emails are cancelled",
             apply=cancel_ordered_again, counter="cancelled"),
        Exit("no_consent", "no marketing consent (checked at send time)"),
        Exit("unsubscribed", "the address is on the suppression list (checked at send time)"),
    ),
    idempotency_key="<store>:winback:customer=<id>:order=<last order id>:step=<main|reminder>",
    settings=flow_schemas.WINBACK,
    counts=("cancelled", "entered", "not_sent", "reminders"),
)
