"""Scripted carrier timelines: what a parcel's carrier reports, step by step, from the moment it ships.

Each timeline is a list of milestones (FulfillmentEvent statuses of
https://shopify.dev/docs/api/admin-graphql/2025-01/enums/FulfillmentEventStatus) at hours after shipping, so the
demo and the tests play the same cases: a normal delivery, a customs hold, a parcel that goes silent (stalled),
a failed attempt then a delivery, and a lost parcel. ``events_for`` turns one into dated steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Milestone:
    """One scripted carrier report: ``hours`` after shipping, its status, place and message."""

    hours: float
    status: str
    city: str | None = None
    country: str | None = None
    message: str | None = None
    # Days after shipping the carrier now expects to deliver (None: the estimate is unchanged).
    estimate_days: float | None = None


TIMELINES: dict[str, tuple[Milestone, ...]] = {
    "normal": (
        Milestone(1, "CONFIRMED", "Memphis", "United States", "Shipment information received", 4),
        Milestone(20, "IN_TRANSIT", "Louisville", "United States", "Departed facility"),
        Milestone(70, "OUT_FOR_DELIVERY", "Chicago", "United States", "Out for delivery"),
        Milestone(77, "DELIVERED", "Chicago", "United States", "Delivered, front door"),
    ),
    "customs_hold": (
        Milestone(1, "CONFIRMED", "Leipzig", "Germany", "Shipment information received", 5),
        Milestone(30, "IN_TRANSIT", "Leipzig", "Germany", "Departed international hub"),
        Milestone(60, "DELAYED", "New York", "United States", "Held by customs for inspection", 9),
        Milestone(190, "IN_TRANSIT", "New York", "United States", "Released by customs"),
        Milestone(230, "OUT_FOR_DELIVERY", "Boston", "United States", "Out for delivery"),
        Milestone(236, "DELIVERED", "Boston", "United States", "Delivered to mailbox"),
    ),
    # Goes silent after the first scan: stall detection must notice the quiet, the carrier never says so.
    "stalled": (
        Milestone(1, "CONFIRMED", "Memphis", "United States", "Shipment information received", 4),
        Milestone(22, "IN_TRANSIT", "Memphis", "United States", "Arrived at facility"),
    ),
    "attempted_then_delivered": (
        Milestone(1, "CONFIRMED", "Lyon", "France", "Shipment information received", 3),
        Milestone(20, "IN_TRANSIT", "Lyon", "France", "In transit"),
        Milestone(50, "OUT_FOR_DELIVERY", "Paris", "France", "Out for delivery"),
        Milestone(58, "ATTEMPTED_DELIVERY", "Paris", "France", "Nobody home, notice left", 4),
        Milestone(74, "OUT_FOR_DELIVERY", "Paris", "France", "Out for delivery, second attempt"),
        Milestone(79, "DELIVERED", "Paris", "France", "Delivered to recipient"),
    ),
    "lost": (
        Milestone(1, "CONFIRMED", "Memphis", "United States", "Shipment information received", 4),
        Milestone(24, "IN_TRANSIT", "Memphis", "United States", "Departed facility"),
        Milestone(200, "FAILURE", "Memphis", "United States", "Parcel lost in transit, claim opened"),
    ),
}


@dataclass(frozen=True)
class TimelineStep:
    """One dated carrier report of a timeline."""

    at: datetime
    status: str
    city: str | None
    country: str | None
    message: str | None
    estimated_delivery_at: datetime | None


def events_for(name: str, shipped_at: datetime) -> list[TimelineStep]:
    """Return a timeline's reports dated from ``shipped_at``; an unknown name raises KeyError naming the known ones."""
    if name not in TIMELINES:
        raise KeyError(f"no carrier timeline {name!r} (known: {', '.join(TIMELINES)})")
    estimate: datetime | None = None
    steps = []
    for m in TIMELINES[name]:
        if m.estimate_days is not None:
            estimate = (shipped_at + timedelta(days=m.estimate_days)).replace(microsecond=0)
        steps.append(TimelineStep((shipped_at + timedelta(hours=m.hours)).replace(microsecond=0), m.status, m.city,
                                  m.country, m.message, estimate))
    return steps
