"""Deliveries: parcels in transit, stalled deliveries, exceptions and late deliveries, each with its ticket, and a
chart of the store's transit times by destination country and carrier (plugin.delivery_estimates)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import abort, request
from sqlalchemy import func, or_, select

from plugin import get_clock
from plugin.admin.blueprint import PAGE_SIZE, bp, ctx, page
from plugin.admin.charts import bar_chart
from plugin.db import get_session
from plugin.delivery_stalls import MAX_AGE_DAYS
from plugin.models import Customer, DeliveryProblem, Order, Parcel, Ticket, TransitEstimate

VIEWS = {"in_transit": "In transit", "stalled": "Stalled", "exceptions": "Exceptions", "late": "Delivered late"}
STALLS = ("unfulfilled", "no_scan", "lost", "past_estimate", "amazon_late_ship", "amazon_late_delivery")
EXCEPTIONS = ("attempted", "failed")
LABELS = {"unfulfilled": "Paid, not fulfilled", "no_scan": "No carrier event", "lost": "Presumed lost",
          "past_estimate": "Past the estimated delivery", "attempted": "Delivery attempted",
          "failed": "Delivery failed",
          "amazon_late_ship": "Amazon: not shipped by the latest ship date",
          "amazon_late_delivery": "Amazon: not delivered by the latest delivery date"}


def _filters() -> dict[str, str | None]:
    view = request.args.get("view") or "stalled"
    if view not in VIEWS:
        abort(400)
    return {"view": view, "carrier": request.args.get("carrier") or None,
            "country": (request.args.get("country") or "").upper() or None}


def _parcel_filters(query: Any, filters: dict[str, str | None]) -> Any:
    if filters["carrier"]:
        query = query.where(Parcel.tracking_company == filters["carrier"])
    if filters["country"]:
        query = query.where(Customer.country == filters["country"])
    return query


def _problems(scope: list[int], kinds: tuple[str, ...], filters: dict[str, str | None]) -> list[Any]:
    """Return the open problems of these kinds, newest first, with their order, parcel and ticket."""
    query = (select(DeliveryProblem.problem, DeliveryProblem.detected_at, Order.id.label("order_id"), Order.name,
                    Order.store_id, Parcel.tracking_company, Parcel.tracking_number, Parcel.status,
                    Parcel.last_event_at, Customer.country, Ticket.id.label("ticket_id"), Ticket.severity,
                    Ticket.status.label("ticket_status"))
             .join(Order, Order.id == DeliveryProblem.order_id)
             .join(Parcel, Parcel.id == DeliveryProblem.parcel_id, isouter=True)
             .join(Customer, Customer.id == Order.customer_id, isouter=True)
             .join(Ticket, Ticket.id == DeliveryProblem.ticket_id, isouter=True)
             .where(DeliveryProblem.store_id.in_(scope), DeliveryProblem.problem.in_(kinds),
                    or_(Ticket.status == "open", Ticket.id.is_(None))))
    return list(get_session().execute(_parcel_filters(query, filters)
                                      .order_by(DeliveryProblem.detected_at.desc(), DeliveryProblem.id.desc())
                                      .limit(PAGE_SIZE)))


def _parcels(scope: list[int], filters: dict[str, str | None], late: bool) -> list[Any]:
    """Return parcels in transit (newest shipped first) or delivered after the carrier's estimate."""
    since = get_clock().now() - timedelta(days=MAX_AGE_DAYS)
    query = (select(Parcel.id, Order.id.label("order_id"), Order.name, Order.store_id, Parcel.tracking_company,
                    Parcel.tracking_number, Parcel.status, Parcel.shipped_at, Parcel.last_event_at,
                    Parcel.estimated_delivery_at, Parcel.delivered_at, Customer.country)
             .join(Order, Order.id == Parcel.order_id)
             .join(Customer, Customer.id == Order.customer_id, isouter=True)
             .where(Parcel.store_id.in_(scope), Parcel.shipped_at >= since, Parcel.fulfillment_status != "CANCELLED"))
    if late:
        query = query.where(Parcel.delivered_at > Parcel.estimated_delivery_at).order_by(Parcel.delivered_at.desc())
    else:
        query = query.where(Parcel.delivered_at.is_(None), or_(Parcel.status.is_(None), Parcel.status != "FAILURE")
                            ).order_by(Parcel.shipped_at.desc())
    rows = list(get_session().execute(_parcel_filters(query, filters).limit(PAGE_SIZE)))
    tickets = dict(get_session().execute(
        select(DeliveryProblem.parcel_id, func.max(DeliveryProblem.ticket_id))
        .where(DeliveryProblem.parcel_id.in_([r.id for r in rows])).group_by(DeliveryProblem.parcel_id)).all()
    ) if rows else {}
    return [(row, tickets.get(row.id)) for row in rows]


def _transit(scope: list[int]) -> tuple[list[Any], Any]:
    """Return the stored transit statistics (most parcels first) and their chart of median days."""
    rows = list(get_session().scalars(select(TransitEstimate).where(TransitEstimate.store_id.in_(scope))
                                      .order_by(TransitEstimate.samples.desc(), TransitEstimate.country,
                                                TransitEstimate.carrier).limit(12)))
    items = [(f"{r.country or '?'} · {r.carrier or 'no carrier'}", round(r.median_days, 1)) for r in rows]
    return rows, bar_chart(items, "Median transit days by destination country and carrier", unit=" d")


@bp.get("/deliveries")
def deliveries() -> Any:
    """Show the deliveries of the selected store(s): one view at a time, filtered by carrier and country."""
    context = ctx()
    scope, filters = context.scope_ids, _filters()
    view = filters["view"]
    session = get_session()
    open_counts = dict(session.execute(
        select(DeliveryProblem.problem, func.count()).join(Ticket, Ticket.id == DeliveryProblem.ticket_id)
        .where(DeliveryProblem.store_id.in_(scope), Ticket.status == "open").group_by(DeliveryProblem.problem)).all())
    problems = parcels = []
    if view in ("stalled", "exceptions"):
        problems = _problems(scope, STALLS if view == "stalled" else EXCEPTIONS, filters)
    else:
        parcels = _parcels(scope, filters, late=view == "late")
    transit, chart = _transit(scope)
    carriers = sorted(c for c in session.scalars(select(Parcel.tracking_company).distinct()
                                                 .where(Parcel.store_id.in_(scope))) if c)
    return page("admin/deliveries.html", views=VIEWS, filters=filters, problems=problems, parcels=parcels,
                labels=LABELS, transit=transit, chart=chart, carriers=carriers,
                stalled=sum(open_counts.get(k, 0) for k in STALLS),
                exceptions=sum(open_counts.get(k, 0) for k in EXCEPTIONS),
                store_names={s.id: s.name or s.external_id for s in context.stores})
