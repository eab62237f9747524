"""Delivery updates: a transactional email at each parcel milestone the merchant selects.

The milestones come from the parcels' carrier events (plugin.sync.parcels) and "shipped" from the fulfilment
itself (off by default: Shopify sends its own shipping confirmation). Transactional class: no marketing consent,
no offer inside (the runner and the template check refuse them), and the customer can turn these updates off
with the one-click link every email carries (plugin.public: ``delivery_optout``).

Once per parcel and milestone: each milestone told is a ``parcel_notice`` row (unique per parcel and milestone),
written with its message in one transaction. Several milestones found together go in one email; a newer
milestone arriving while an earlier update still waits (quiet hours) takes the waiting one's milestones along
and the waiting one is cancelled (``collapsed``), so the customer gets one email, not a burst. The send policy
holds updates during the merchant's quiet hours in the customer's time zone, except "out for delivery"
(plugin.messaging.policy). Milestones older than ``max_late_hours`` (a backfill) are never emailed.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from plugin import flow_schemas
from plugin.flows.audience import contact_reason, history_cutoff
from plugin.flows.base import Exit, Flow, FlowRun, Rows, Step
from plugin.messaging import reasons
from plugin.messaging.outbox import message_row
from plugin.models import Customer, Message, Order, Parcel, ParcelEvent, ParcelNotice

NAME = "delivery_update"
COLLAPSED = "collapsed"
URGENT = frozenset({"OUT_FOR_DELIVERY"})
# Milestones a customer can be told of, each switched by its setting.
SETTING_OF = {"SHIPPED": "notify_shipped", "IN_TRANSIT": "notify_in_transit",
              "OUT_FOR_DELIVERY": "notify_out_for_delivery", "ATTEMPTED_DELIVERY": "notify_attempted_delivery",
              "DELAYED": "notify_delayed", "DELIVERED": "notify_delivered", "FAILURE": "notify_failure"}


def selected(settings: Any) -> set[str]:
    """Return the milestones the merchant chose to tell customers about."""
    return {milestone for milestone, name in SETTING_OF.items() if settings[name]}


def _fresh_milestones(run: FlowRun, chosen: set[str]) -> dict[int, dict[str, datetime]]:
    """Return {parcel id: {milestone: when}} of chosen milestones not told yet and recent enough to tell."""
    since = run.now - timedelta(hours=float(run.settings["max_late_hours"]))
    cutoff = history_cutoff(run)
    if cutoff is not None:
        since = max(since, cutoff)
    store_id = run.store.id
    told = select(ParcelNotice.id).where(ParcelNotice.parcel_id == Parcel.id).correlate(Parcel)
    found: dict[int, dict[str, datetime]] = defaultdict(dict)
    events = [s for s in chosen if s != "SHIPPED"]
    if events:
        query = (select(ParcelEvent.parcel_id, ParcelEvent.status, func.min(ParcelEvent.happened_at))
                 .join(Parcel, Parcel.id == ParcelEvent.parcel_id)
                 .where(ParcelEvent.store_id == store_id, Parcel.fulfillment_status == "SUCCESS",
                        ParcelEvent.status.in_(events), ParcelEvent.happened_at >= since,
                        ParcelEvent.happened_at <= run.now,
                        ~select(ParcelNotice.id).where(ParcelNotice.parcel_id == ParcelEvent.parcel_id,
                                                       ParcelNotice.milestone == ParcelEvent.status).exists())
                 .group_by(ParcelEvent.parcel_id, ParcelEvent.status))
        for parcel_id, status, when in run.session.execute(query):
            found[parcel_id][status] = when
    if "SHIPPED" in chosen:
        query = select(Parcel.id, Parcel.shipped_at).where(
            Parcel.store_id == store_id, Parcel.fulfillment_status == "SUCCESS", Parcel.shipped_at >= since,
            Parcel.shipped_at <= run.now, ~told.where(ParcelNotice.milestone == "SHIPPED").exists())
        for parcel_id, when in run.session.execute(query):
            found[parcel_id]["SHIPPED"] = when
    return found


def _take_waiting(run: FlowRun, parcel_ids: list[int]) -> dict[int, dict[str, datetime]]:
    """Cancel updates of these parcels still waiting to go (``collapsed``) and return the milestones they held.

    Only rows still ``scheduled`` are taken (a row the dispatcher already claimed goes as it is).
    """
    held: dict[int, dict[str, datetime]] = defaultdict(dict)
    if not parcel_ids:
        return held
    rows = run.session.execute(
        select(ParcelNotice.parcel_id, ParcelNotice.milestone, ParcelNotice.created_at, Message.id)
        .join(Message, Message.idempotency_key == ParcelNotice.message_key)
        .where(ParcelNotice.parcel_id.in_(parcel_ids), Message.status == "scheduled")).all()
    taken: set[int] = set()
    for message_id in {r[3] for r in rows}:
        done = run.session.execute(update(Message).where(Message.id == message_id, Message.status == "scheduled")
                                   .values(status="cancelled", skip_reason=COLLAPSED)).rowcount
        if done:
            taken.add(message_id)
    for parcel_id, milestone, created, message_id in rows:
        if message_id in taken:
            held[parcel_id][milestone] = created
    return held


def due_updates(run: FlowRun) -> Rows:
    """Return one update per parcel with milestones to tell (collapsed with any update still waiting)."""
    fresh = _fresh_milestones(run, selected(run.settings))
    if not fresh:
        return []
    store = run.store
    parcel_ids = sorted(fresh)
    held = _take_waiting(run, parcel_ids)
    info = {row.id: row for row in run.session.execute(
        select(Parcel.id, Parcel.order_id, Order.name, Order.cancelled_at, Order.customer_id, Customer.email,
               Customer.locale)
        .join(Order, Order.id == Parcel.order_id)
        .join(Customer, Customer.id == Order.customer_id, isouter=True)
        .where(Parcel.id.in_(parcel_ids)))}
    rows: Rows = []
    for parcel_id in parcel_ids:
        parcel = info[parcel_id]
        if parcel.cancelled_at is not None:
            continue  # a cancelled order's parcel is news to nobody
        milestones = {**held.get(parcel_id, {}), **fresh[parcel_id]}
        ordered = sorted(milestones, key=lambda m: (milestones[m], m))
        headline = ordered[-1]
        key_parts = (f"parcel={parcel_id}", "m=" + "+".join(sorted(milestones)))
        reason = contact_reason(parcel.email, store.protected_data_access)
        extra: dict[str, Any] = {"status": "skipped", "skip_reason": reason} if reason else {}
        row = message_row(store_id=store.id, flow=NAME, step="main", key_parts=key_parts, scheduled_for=run.now,
                          customer_id=parcel.customer_id, order_id=parcel.order_id, locale=parcel.locale,
                          to_address=parcel.email if store.protected_data_access else None,
                          payload={"parcel_id": parcel_id, "milestones": ordered, "milestone": headline,
                                   "urgent": headline in URGENT, "order_name": parcel.name}, **extra)
        rows.append(row)
        _note(run, parcel_id, milestones, row["idempotency_key"])
    return rows


def _note(run: FlowRun, parcel_id: int, milestones: dict[str, datetime], key: str) -> None:
    """Record that these milestones are told by the message ``key`` (re-pointing collapsed ones)."""
    known = set(run.session.scalars(select(ParcelNotice.milestone).where(ParcelNotice.parcel_id == parcel_id,
                                                                         ParcelNotice.milestone.in_(milestones))))
    if known:
        run.session.execute(update(ParcelNotice).where(ParcelNotice.parcel_id == parcel_id,
                                                       ParcelNotice.milestone.in_(known)).values(message_key=key))
    for milestone in sorted(set(milestones) - known):
        run.session.add(ParcelNotice(store_id=run.store.id, parcel_id=parcel_id, milestone=milestone,
                                     message_key=key))
    run.session.flush()


def link_notices(session: Any, store_id: int) -> int:
    """Fill ``parcel_notice.message_id`` from the keys of the messages the run wrote; return how many."""
    message = select(Message.id).where(Message.idempotency_key == ParcelNotice.message_key).scalar_subquery()
    return int(session.execute(update(ParcelNotice).where(
        ParcelNotice.store_id == store_id, ParcelNotice.message_key.is_not(None),
        ParcelNotice.message_id.is_distinct_from(message)).values(message_id=message)
        .execution_options(synchronize_session=False)).rowcount or 0)


FLOW = Flow(
    name=NAME,
    title="Delivery updates",
    about="A transactional email at each parcel milestone you select, with a tracking page; Shopify sends its "
          "own shipping confirmation, so \"shipped\" is off by default.",
    flow_class="transactional",
    platforms=("shopify",),
    trigger="due query: carrier milestones (fulfilment events) not told yet, at most max_late_hours old",
    audience=("the customer of the parcel's order", "contact details available to the app",
              "not for cancelled orders"),
    timing="at once; held during quiet hours in the customer's time zone, except out for delivery",
    steps=(Step("main", due_updates, "one email per parcel with the milestones found together", template="main",
                counter="updates", skipped_counter="skipped"),),
    exits=(
        Exit("delivery_updates_off", "the customer turned delivery updates off (checked at send time)"),
        Exit("unsubscribed", "the address is on the suppression list (checked at send time)"),
        Exit(COLLAPSED, "a later update for the same parcel carries the milestone"),
        Exit(reasons.ORDER_CANCELLED, "the order was cancelled"),
    ),
    idempotency_key="<store>:delivery_update:parcel=<parcel id>:m=<milestones>:step=main; "
                    "parcel_notice is unique per parcel and milestone",
    settings=flow_schemas.DELIVERY_UPDATE,
    counts=("updates", "skipped"),
)
