"""When an order counts as fulfilled and delivered, from its parcels: one rule for the sync and the webhooks.

An order is delivered when its last parcel is: ``delivered_at`` is the latest delivery time of the fulfilments
that ship (status ``SUCCESS``), and only once every one of them is delivered; cancelled or failed fulfilments
do not count (https://shopify.dev/docs/api/admin-graphql/2025-01/enums/FulfillmentStatus). ``fulfilled_at`` is
when the first of them was created.

Webhooks report one fulfilment at a time (``fulfillments/update``, ``fulfillment_events/create``) and may arrive
late or twice, so a report is merged into what is known of the order's fulfilments without ever going back: a
status only moves forward (``SUCCESS`` to ``CANCELLED``, never back), and of two delivery times the earlier is
kept (a REST fulfilment gives its last update as the delivery time; a delivery event and GraphQL give the time
the carrier reported).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime

from connectors.records import FulfillmentRecord

SHIPS = "SUCCESS"
# How far along each FulfillmentStatus is; a merged status never moves to a lower rank.
_RANK = {"PENDING": 0, "OPEN": 0, "SUCCESS": 1, "ERROR": 2, "FAILURE": 2, "CANCELLED": 3}


def fulfilled_at(fulfillments: Iterable[FulfillmentRecord]) -> datetime | None:
    """Return when the first fulfilment that ships was created."""
    stamps = [f.created_at for f in fulfillments if f.status == SHIPS and f.created_at is not None]
    return min(stamps) if stamps else None


def delivered_at(fulfillments: Iterable[FulfillmentRecord]) -> datetime | None:
    """Return the last parcel's delivery time once every fulfilment that ships is delivered, else None."""
    stamps = [f.delivered_at for f in fulfillments if f.status == SHIPS]
    if not stamps or any(stamp is None for stamp in stamps):
        return None
    return max(stamps)  # type: ignore[type-var]


def _earlier(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None or b is None:
        return a or b
    return min(a, b)


def merge_one(known: FulfillmentRecord | None, report: FulfillmentRecord) -> FulfillmentRecord:
    """Merge a report of one fulfilment into what is known of it (status forward only, earlier delivery)."""
    if known is None:
        return report
    status = report.status if _RANK.get(report.status, 0) >= _RANK.get(known.status, 0) else known.status
    return replace(report, status=status, created_at=report.created_at or known.created_at,
                   delivered_at=_earlier(known.delivered_at, report.delivered_at))


def merge(known: Sequence[FulfillmentRecord], reports: Iterable[FulfillmentRecord], *,
          complete: bool = False) -> tuple[FulfillmentRecord, ...]:
    """Merge reports into the known fulfilments of an order, in id order.

    ``complete``: the reports are all of the order's fulfilments (an order body), so known ones they lack
    are dropped; otherwise (one fulfilment's webhook) the others are kept as they are.
    """
    by_id = {f.external_id: f for f in known}
    merged = {} if complete else dict(by_id)
    for report in reports:
        merged[report.external_id] = merge_one(merged.get(report.external_id, by_id.get(report.external_id)),
                                               report)
    return tuple(sorted(merged.values(), key=lambda f: (len(f.external_id), f.external_id)))
