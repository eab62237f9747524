"""Where each kind of record goes: every connector stream declares the ``record_kind`` it yields, and this
table maps that kind to its owner's upsert (no switch on stream names)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from plugin.sync.customers import upsert_customers
from plugin.sync.orders import upsert_orders
from plugin.sync.products import upsert_products
from plugin.sync.reviews import upsert_reviews


def _order_rows_written(result: dict[str, int]) -> int:
    return result["orders"] + result["lines_written"] + result["lines_deleted"]


@dataclass(frozen=True)
class Sink:
    """The owner's upsert of one record kind, and how many rows written its result stands for."""

    upsert: Callable[..., Any]
    written: Callable[[Any], int]
    # The owner takes the clock's ``now`` (customers: a consent withdrawal cancels scheduled marketing).
    dated: bool = False

    def write(self, session: Session, store_id: int, records: Iterable[Any], now: datetime) -> int:
        """Upsert ``records``; return how many rows were written."""
        if self.dated:
            return self.written(self.upsert(session, store_id, records, now=now))
        return self.written(self.upsert(session, store_id, records))


SINKS: dict[str, Sink] = {
    "customers": Sink(upsert_customers, int, dated=True),
    "products": Sink(upsert_products, int),
    "orders": Sink(upsert_orders, _order_rows_written),
    "reviews": Sink(upsert_reviews, len),  # the ids of new reviews
}


def sink_for(record_kind: str) -> Sink:
    """Return the sink of a record kind, or raise ValueError for a kind no owner takes."""
    try:
        return SINKS[record_kind]
    except KeyError:
        raise ValueError(f"no owner for record kind {record_kind!r}") from None
