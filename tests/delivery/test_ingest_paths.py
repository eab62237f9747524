"""plugin.sync.parcels.ingest_events over a scripted set of batches: duplicates in a batch, replays, late events,
deliveries before the milestones that precede them, ties, events of unknown parcels, a cancelled parcel.

The expected rows are written out by hand below. The row path (bulk=False) is the reference; the bulk path
(plugin.sync.parcels_staged: set-based statements, on PostgreSQL after COPY into a staging table) must give the same
rows on each database.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.records import FulfillmentEventRecord
from plugin.models import Merchant, Order, Parcel, ParcelEvent, Store
from plugin.sync.parcels import fulfillment_gid, ingest_events

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
E0, E1, E2, E3 = (T0 + timedelta(days=d) for d in (5, 4, 2, 3))


def h(n: int) -> datetime:
    """T0 plus n hours."""
    return T0 + timedelta(hours=n)


# Parcel (fulfilment id) -> (order, fulfilment status, shipped, estimate from the fulfilment report).
PARCELS = {"1": ("O1", "SUCCESS", h(0), None), "2": ("O1", "SUCCESS", h(1), None), "3": ("O2", "SUCCESS", h(0), E0),
           "4": ("O3", "CANCELLED", h(0), None), "5": ("O3", "SUCCESS", h(2), None), "6": ("O4", "SUCCESS", h(0), None),
           "7": ("O4", "SUCCESS", h(3), None)}


def ev(n: int, parcel: str, status: str, at: datetime, estimate: datetime | None = None,
       message: str = "Scan") -> FulfillmentEventRecord:
    """One carrier event (event id n)."""
    return FulfillmentEventRecord(external_id=str(n), fulfillment_id=parcel, status=status, happened_at=at,
                                  estimated_delivery_at=estimate, city="Memphis", country="United States",
                                  message=message)


# Two ingests of ten and eleven events (batches of five), then both again newest first: a pure replay.
FIRST = [ev(101, "1", "CONFIRMED", h(2)), ev(601, "6", "IN_TRANSIT", h(10), message="first copy"),
         ev(602, "6", "OUT_FOR_DELIVERY", h(10)),  # same time as 601: the one stored later is the latest
         ev(601, "6", "IN_TRANSIT", h(10), message="second copy"),  # a copy in the same batch: the last wins
         ev(901, "999", "IN_TRANSIT", h(3)),  # a parcel we do not know
         ev(102, "1", "IN_TRANSIT", h(5), E1), ev(201, "2", "DELIVERED", h(30)), ev(301, "3", "IN_TRANSIT", h(3)),
         ev(501, "5", "IN_TRANSIT", h(4)), ev(401, "4", "IN_TRANSIT", h(4))]
SECOND = [ev(102, "1", "IN_TRANSIT", h(5), E1),  # replayed
          ev(202, "2", "IN_TRANSIT", h(12)), ev(203, "2", "OUT_FOR_DELIVERY", h(28)),  # after its delivery
          ev(302, "3", "OUT_FOR_DELIVERY", h(20), E2), ev(303, "3", "IN_TRANSIT", h(8), E3),  # in one batch
          ev(502, "5", "DELIVERED", h(40)), ev(103, "1", "DELIVERED", h(50)), ev(301, "3", "IN_TRANSIT", h(3)),
          ev(603, "6", "IN_TRANSIT", h(9)),  # older than the parcel's last event
          ev(902, "999", "DELIVERED", h(6)), ev(701, "7", "DELIVERED", h(60))]

# (stored, unknown, parcels touched, orders refreshed) per ingest.
EXPECTED_RESULTS = [(8, 1, {"1", "2", "3", "4", "5", "6"}, {"O1"}),
                    (8, 1, {"1", "2", "3", "5", "6", "7"}, {"O1", "O2", "O3", "O4"}),
                    (0, 2, set(), set())]
# Events in id order (the order they were first seen): (event id, parcel, status, happened, estimate, message).
EXPECTED_EVENTS = [
    ("101", "1", "CONFIRMED", h(2), None, "Scan"), ("601", "6", "IN_TRANSIT", h(10), None, "second copy"),
    ("602", "6", "OUT_FOR_DELIVERY", h(10), None, "Scan"), ("102", "1", "IN_TRANSIT", h(5), E1, "Scan"),
    ("201", "2", "DELIVERED", h(30), None, "Scan"), ("301", "3", "IN_TRANSIT", h(3), None, "Scan"),
    ("501", "5", "IN_TRANSIT", h(4), None, "Scan"), ("401", "4", "IN_TRANSIT", h(4), None, "Scan"),
    ("202", "2", "IN_TRANSIT", h(12), None, "Scan"), ("203", "2", "OUT_FOR_DELIVERY", h(28), None, "Scan"),
    ("302", "3", "OUT_FOR_DELIVERY", h(20), E2, "Scan"), ("303", "3", "IN_TRANSIT", h(8), E3, "Scan"),
    ("502", "5", "DELIVERED", h(40), None, "Scan"), ("103", "1", "DELIVERED", h(50), None, "Scan"),
    ("603", "6", "IN_TRANSIT", h(9), None, "Scan"), ("701", "7", "DELIVERED", h(60), None, "Scan")]
# Parcel -> (status, last event, delivered, estimate).
EXPECTED_PARCELS = {"1": ("DELIVERED", h(50), h(50), E1), "2": ("DELIVERED", h(30), h(30), None),
                    "3": ("OUT_FOR_DELIVERY", h(20), None, E2), "4": ("IN_TRANSIT", h(4), None, None),
                    "5": ("DELIVERED", h(40), h(40), None), "6": ("OUT_FOR_DELIVERY", h(10), None, None),
                    "7": ("DELIVERED", h(60), h(60), None)}
# After the first ingest: parcel 1 moved on, 2 delivered (out of order), 3 kept its report's estimate.
AFTER_FIRST_PARCELS = {"1": ("IN_TRANSIT", h(5), None, E1), "2": ("DELIVERED", h(30), h(30), None),
                       "3": ("IN_TRANSIT", h(3), None, E0), "4": ("IN_TRANSIT", h(4), None, None),
                       "5": ("IN_TRANSIT", h(4), None, None), "6": ("OUT_FOR_DELIVERY", h(10), None, None),
                       "7": (None, None, None, None)}
# Order -> (fulfilled, delivered, estimate). Only orders whose parcels' delivery or estimate moved are refreshed:
# after the first ingest O1 alone (not delivered: parcel 1 is on its way).
AFTER_FIRST_ORDERS = {"O1": (h(0), None, E1), "O2": (None, None, None), "O3": (None, None, None),
                      "O4": (None, None, None)}
# At the end: O1 when its later parcel arrived, O3 without its cancelled parcel, O4 not delivered (parcel 6 is not).
EXPECTED_ORDERS = {"O1": (h(0), h(50), E1), "O2": (h(0), None, E2), "O3": (h(2), h(40), None),
                   "O4": (h(0), None, None)}


def _seed(session: Session, shop: str) -> int:
    """Create a store with the orders and parcels of PARCELS; return the store id."""
    merchant = Merchant(name="M")
    session.add(merchant)
    session.flush()
    store = Store(merchant_id=merchant.id, platform="shopify", external_id=shop)
    session.add(store)
    session.flush()
    orders = {}
    for name in sorted({o for o, *_ in PARCELS.values()}):
        orders[name] = Order(store_id=store.id, external_id=name, name=name, created_at_remote=h(-24),
                             currency="USD", tags=[])
        session.add(orders[name])
    session.flush()
    for fid, (order, status, shipped, estimate) in PARCELS.items():
        session.add(Parcel(store_id=store.id, order_id=orders[order].id, fulfillment_gid=fulfillment_gid(fid),
                           fulfillment_status=status, shipped_at=shipped, estimated_delivery_at=estimate))
    session.flush()
    return store.id


def _rows(session: Session, store_id: int) -> tuple[list, dict, dict]:
    """Return the store's events (in id order), parcels and orders as plain tuples."""
    session.expire_all()
    events = [(e.event_gid.rsplit("/", 1)[-1], e.parcel.fulfillment_gid.rsplit("/", 1)[-1], e.status, e.happened_at,
               e.estimated_delivery_at, e.message)
              for e in session.scalars(select(ParcelEvent).where(ParcelEvent.store_id == store_id)
                                       .order_by(ParcelEvent.id))]
    parcels = {p.fulfillment_gid.rsplit("/", 1)[-1]:
               (p.status, p.last_event_at, p.delivered_at, p.estimated_delivery_at)
               for p in session.scalars(select(Parcel).where(Parcel.store_id == store_id))}
    orders = {o.external_id: (o.fulfilled_at, o.delivered_at, o.estimated_delivery_at)
              for o in session.scalars(select(Order).where(Order.store_id == store_id))}
    return events, parcels, orders


def _run(session: Session, store_id: int, bulk: bool) -> tuple[list, tuple, tuple]:
    """Run the three ingests; return their results and the store's rows after the first and after the last."""
    gids = dict(session.execute(select(Parcel.id, Parcel.fulfillment_gid).where(Parcel.store_id == store_id)).all())
    names = dict(session.execute(select(Order.id, Order.external_id).where(Order.store_id == store_id)).all())
    results, snapshots = [], []
    for events in (FIRST, SECOND, [*reversed(FIRST + SECOND)]):
        done = ingest_events(session, store_id, events, batch_size=5, bulk=bulk)
        results.append((done.stored, done.unknown_parcel, {gids[p].rsplit("/", 1)[-1] for p in done.parcels},
                        {names[o] for o in done.orders}))
        snapshots.append(_rows(session, store_id))
    return results, snapshots[0][1:], snapshots[-1]


EXPECTED = (EXPECTED_RESULTS, (AFTER_FIRST_PARCELS, AFTER_FIRST_ORDERS),
            (EXPECTED_EVENTS, EXPECTED_PARCELS, EXPECTED_ORDERS))


def test_the_row_path_keeps_every_rule(db_session: Session) -> None:
    store_id = _seed(db_session, "rows.myshopify.com")
    assert _run(db_session, store_id, bulk=False) == EXPECTED


def test_the_bulk_path_gives_the_row_paths_rows(db_session: Session) -> None:
    rows_store = _seed(db_session, "rows.myshopify.com")
    bulk_store = _seed(db_session, "bulk.myshopify.com")
    by_rows = _run(db_session, rows_store, bulk=False)
    by_bulk = _run(db_session, bulk_store, bulk=True)
    assert by_bulk == by_rows
    assert by_bulk == EXPECTED
