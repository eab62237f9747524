"""Carrier events in set-based statements: the bulk path of plugin.sync.parcels, same rules as its row path.

The rules are the row path's (plugin.sync.parcels): an event stored once per event id (a replay conflicts and is
ignored; of two copies in one batch the last wins, at the first one's place), events of unknown parcels counted
and dropped, each parcel that got new events moved on (in-order events advance it from its stored state; a late
event or a delivery derives it again from all its events), each order made to follow its parcels.

- PostgreSQL: each batch COPYed into a temporary staging table, then one statement each: the insert (which also
  counts the unknown), the parcels' update, the orders' update.
- SQLite: the events go in with the row path's executemany (SQLite runs it in-process, no round trips), then the
  parcels' and orders' updates are set-based (``UPDATE ... FROM``), so no row is read into Python and bound back.

bench/delivery_ingest.py measures this path against a raw insert; tests/delivery/test_ingest_paths.py holds it to
the row path's rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, text
from sqlalchemy.orm import Session

from plugin.models import ParcelEvent
from plugin.sync.staging import copy_rows, prepare_staging, staging_setup, staging_table
from plugin.table_stats import analyse_first_rows

_STAGING = MetaData()
EVENT_FIELDS = ("event_gid", "status", "happened_at", "estimated_delivery_at", "city", "province", "country",
                "message")
STAGE_EVENTS = staging_table(_STAGING, "aftercare_stage_parcel_event", ParcelEvent.__table__,  # type: ignore[arg-type]
                             EVENT_FIELDS, Column("fulfillment_gid", String(255)), Column("pos", Integer))
_STAGING_SETUP = staging_setup(_STAGING)
# The tables whose unique and parcel indexes the statements below probe (see analyse_first_rows).
_PROBED = ("parcel", "parcel_event")

_FIELDS = ", ".join(EVENT_FIELDS)
# Each staged copy finds its parcel through the (store_id, fulfillment_gid) unique index (a correlated lookup keeps
# that plan whatever the statistics say). Of the copies of one event with a known parcel the last wins, inserted
# at the first one's place, so ids follow the batch as the row path's. The outer join returns the unknown count
# even when nothing new was stored. (Only module constants are formatted in.)
_INSERT = text(f"""
WITH staged AS MATERIALIZED (
    SELECT s.*, (SELECT p.id FROM parcel p WHERE p.store_id = :store_id AND p.fulfillment_gid = s.fulfillment_gid)
           AS parcel_id
    FROM {STAGE_EVENTS.name} s),
known AS (
    SELECT staged.*, row_number() OVER (PARTITION BY event_gid ORDER BY pos DESC) AS copy_rank,
           min(pos) OVER (PARTITION BY event_gid) AS first_pos
    FROM staged WHERE parcel_id IS NOT NULL),
inserted AS (
    INSERT INTO parcel_event (store_id, parcel_id, {_FIELDS})
    SELECT :store_id, parcel_id, {_FIELDS} FROM known WHERE copy_rank = 1 ORDER BY first_pos
    ON CONFLICT (store_id, event_gid) DO NOTHING
    RETURNING parcel_id, id, status, happened_at, estimated_delivery_at)
SELECT (SELECT count(*) FROM staged WHERE parcel_id IS NULL) AS unknown, inserted.*
FROM (SELECT 1) AS one LEFT JOIN inserted ON TRUE
""")  # noqa: S608

# ``fast``: the parcel got no delivery and nothing older than its last event, so its new events (in Python: the
# latest's status and time, the latest estimate they carry) move it on; the others are derived again from all
# their events. Fast parcels are always written (as the row path); derived ones only where a value differs.
# The old values come from the pre-update snapshot, so RETURNING can say whose delivery or estimate moved.
_ADVANCE = text("""
WITH news AS (
    SELECT * FROM unnest(CAST(:ids AS bigint[]), CAST(:first_new AS timestamptz[]), CAST(:delivered AS boolean[]),
                         CAST(:status AS text[]), CAST(:last_new AS timestamptz[]), CAST(:estimate AS timestamptz[]))
           AS n(id, first_new, delivered_new, new_status, new_last, new_estimate)),
cur AS MATERIALIZED (
    SELECT p.id, p.status, p.last_event_at, p.delivered_at, p.estimated_delivery_at, n.new_status, n.new_last,
           n.new_estimate,
           NOT n.delivered_new AND (p.last_event_at IS NULL OR n.first_new >= p.last_event_at) AS fast
    FROM parcel p JOIN news n ON n.id = p.id),
derived AS (
    SELECT e.parcel_id,
           (array_agg(e.status ORDER BY e.happened_at DESC, e.id DESC))[1] AS status,
           max(e.happened_at) AS last_event_at,
           min(e.happened_at) FILTER (WHERE e.status = 'DELIVERED') AS delivered_at,
           (array_agg(e.estimated_delivery_at ORDER BY e.happened_at DESC, e.id DESC)
                FILTER (WHERE e.estimated_delivery_at IS NOT NULL))[1] AS estimated_delivery_at
    FROM parcel_event e
    WHERE e.parcel_id IN (SELECT id FROM cur WHERE NOT fast)
    GROUP BY e.parcel_id),
target AS (
    SELECT c.id, c.fast, c.status AS old_status, c.last_event_at AS old_last, c.delivered_at AS old_delivered,
           c.estimated_delivery_at AS old_estimate,
           CASE WHEN c.fast THEN c.new_status ELSE d.status END AS status,
           CASE WHEN c.fast THEN c.new_last ELSE d.last_event_at END AS last_event_at,
           CASE WHEN c.fast THEN c.delivered_at ELSE coalesce(d.delivered_at, c.delivered_at) END AS delivered_at,
           coalesce(CASE WHEN c.fast THEN c.new_estimate ELSE d.estimated_delivery_at END,
                    c.estimated_delivery_at) AS estimated_delivery_at
    FROM cur c LEFT JOIN derived d ON d.parcel_id = c.id)
UPDATE parcel p
SET status = t.status, last_event_at = t.last_event_at, delivered_at = t.delivered_at,
    estimated_delivery_at = t.estimated_delivery_at, updated_at = now()
FROM target t
WHERE p.id = t.id
  AND (t.fast OR (t.status, t.last_event_at, t.delivered_at, t.estimated_delivery_at)
                 IS DISTINCT FROM (t.old_status, t.old_last, t.old_delivered, t.old_estimate))
RETURNING p.order_id,
          (t.delivered_at, t.estimated_delivery_at) IS DISTINCT FROM (t.old_delivered, t.old_estimate) AS moved
""")

# An order with parcels: fulfilled when the first that ships left, delivered when the last that ships arrived
# (none undelivered), the latest estimate of those that ship (else its own); written only where a fact differs.
_REFRESH_ORDERS = text("""
UPDATE orders o
SET fulfilled_at = f.fulfilled_at, delivered_at = f.delivered_at,
    estimated_delivery_at = coalesce(f.estimated_delivery_at, o.estimated_delivery_at), updated_at = now()
FROM (SELECT order_id,
             min(shipped_at) FILTER (WHERE ships) AS fulfilled_at,
             CASE WHEN bool_and(delivered_at IS NOT NULL) FILTER (WHERE ships)
                  THEN max(delivered_at) FILTER (WHERE ships) END AS delivered_at,
             max(estimated_delivery_at) FILTER (WHERE ships) AS estimated_delivery_at
      FROM (SELECT order_id, shipped_at, delivered_at, estimated_delivery_at, fulfillment_status = :ships AS ships
            FROM parcel WHERE order_id = ANY(CAST(:ids AS bigint[]))) AS listed
      GROUP BY order_id) AS f
WHERE o.id = f.order_id
  AND (o.fulfilled_at, o.delivered_at, o.estimated_delivery_at)
      IS DISTINCT FROM (f.fulfilled_at, f.delivered_at, coalesce(f.estimated_delivery_at, o.estimated_delivery_at))
""")


def store_events_staged(session: Session, store_id: int,
                        staged: Iterable[tuple[Any, ...]]) -> tuple[list[Any], int]:
    """Store one batch of events (tuples: EVENT_FIELDS, fulfillment gid, position); return the rows newly stored
    (parcel_id, id, status, happened_at, estimated_delivery_at) and how many events named an unknown parcel."""
    prepare_staging(session, _STAGING_SETUP)
    copy_rows(session, STAGE_EVENTS, staged)
    result = session.execute(_INSERT, {"store_id": store_id}).all()
    # The probes above use the unique and parcel indexes, which the planner finds once the tables have statistics.
    analyse_first_rows(session.connection(), _PROBED)
    return [row for row in result if row.id is not None], int(result[0].unknown)


def advance_parcels_staged(session: Session, new: dict[int, list[Any]]) -> set[int]:
    """Move parcels on by the events just stored for them (one UPDATE); return the orders whose delivery or
    estimate moved. The same rule as ``plugin.sync.parcels.advance_parcels``."""
    if not new:
        return set()
    columns: dict[str, list[Any]] = {k: [] for k in ("ids", "first_new", "delivered", "status", "last_new",
                                                        "estimate")}
    for parcel_id, rows in sorted(new.items()):
        events = sorted(rows, key=lambda e: (e.happened_at, e.id))
        estimates: Sequence[datetime] = [e.estimated_delivery_at for e in events if e.estimated_delivery_at is not None]
        for key, value in (("ids", parcel_id), ("first_new", events[0].happened_at),
                           ("delivered", any(e.status == "DELIVERED" for e in events)),
                           ("status", events[-1].status), ("last_new", events[-1].happened_at),
                           ("estimate", estimates[-1] if estimates else None)):
            columns[key].append(value)
    return {order_id for order_id, moved in session.execute(_ADVANCE, columns) if moved}


def refresh_orders_staged(session: Session, order_ids: Iterable[int], ships: str) -> None:
    """Make each order follow its parcels (one UPDATE); the same rule as ``plugin.sync.parcels.refresh_orders``."""
    ids = sorted(set(order_ids))
    if ids:
        session.execute(_REFRESH_ORDERS, {"ids": ids, "ships": ships})


# SQLite: the same rules. Its transactions begin IMMEDIATE (one writer at a time), so the events just stored are
# the rows from the batch's first new id on; each value is read through the (parcel_id, happened_at) index,
# restricted to those new events where the parcel moves on from them. NOT INDEXED keeps the new events' lookup on
# the id range (without statistics SQLite walks the whole parcel index instead, to group without sorting).
# RETURNING cannot read an UPDATE's FROM on SQLite, so the orders whose parcels' delivery or estimate moves are
# selected first, from the same derivation.
_SQLITE_NEW = "n.parcel_id = c.id AND n.id >= :first"
_SQLITE_TARGET = f"""
WITH per AS (
    SELECT parcel_id, min(happened_at) AS first_new, max(status = 'DELIVERED') AS delivered_new
    FROM parcel_event NOT INDEXED WHERE id >= :first GROUP BY parcel_id),
cur AS (
    SELECT p.id, p.order_id, p.status, p.last_event_at, p.delivered_at, p.estimated_delivery_at,
           NOT per.delivered_new AND (p.last_event_at IS NULL OR per.first_new >= p.last_event_at) AS fast
    FROM parcel p JOIN per ON per.parcel_id = p.id),
target AS (
    SELECT c.*,
      CASE WHEN c.fast
           THEN (SELECT n.status FROM parcel_event n WHERE {_SQLITE_NEW} ORDER BY n.happened_at DESC, n.id DESC LIMIT 1)
           ELSE (SELECT e.status FROM parcel_event e WHERE e.parcel_id = c.id
                 ORDER BY e.happened_at DESC, e.id DESC LIMIT 1) END AS new_status,
      CASE WHEN c.fast THEN (SELECT max(n.happened_at) FROM parcel_event n WHERE {_SQLITE_NEW})
           ELSE (SELECT max(e.happened_at) FROM parcel_event e WHERE e.parcel_id = c.id) END AS new_last,
      CASE WHEN c.fast THEN c.delivered_at
           ELSE coalesce((SELECT min(e.happened_at) FROM parcel_event e
                          WHERE e.parcel_id = c.id AND e.status = 'DELIVERED'), c.delivered_at) END AS new_delivered,
      coalesce(CASE WHEN c.fast
                    THEN (SELECT n.estimated_delivery_at FROM parcel_event n
                          WHERE {_SQLITE_NEW} AND n.estimated_delivery_at IS NOT NULL
                          ORDER BY n.happened_at DESC, n.id DESC LIMIT 1)
                    ELSE (SELECT e.estimated_delivery_at FROM parcel_event e
                          WHERE e.parcel_id = c.id AND e.estimated_delivery_at IS NOT NULL
                          ORDER BY e.happened_at DESC, e.id DESC LIMIT 1) END,
               c.estimated_delivery_at) AS new_estimate
    FROM cur c),
written AS (
    SELECT * FROM target
    WHERE fast OR new_status IS NOT status OR new_last IS NOT last_event_at OR new_delivered IS NOT delivered_at
          OR new_estimate IS NOT estimated_delivery_at)
"""  # noqa: S608
_SQLITE_MOVED = text(_SQLITE_TARGET + """
SELECT DISTINCT order_id FROM written
WHERE new_delivered IS NOT delivered_at OR new_estimate IS NOT estimated_delivery_at""")  # noqa: S608
_SQLITE_ADVANCE = text(_SQLITE_TARGET + """
UPDATE parcel SET status = w.new_status, last_event_at = w.new_last, delivered_at = w.new_delivered,
                  estimated_delivery_at = w.new_estimate, updated_at = CURRENT_TIMESTAMP
FROM written AS w WHERE parcel.id = w.id""")  # noqa: S608
# SQLite rewrites an index entry whenever its column is assigned, even to the same value (the orders' fulfilment
# indexes took a third of the pages an ingest wrote), so each fact is written by its own UPDATE, only where it
# differs: a carrier estimate moves the order's row and its change index, not its fulfilment and delivery indexes.
_SQLITE_FACTS = """
(SELECT order_id,
        min(CASE WHEN ships THEN shipped_at END) AS fulfilled_at,
        CASE WHEN sum(ships) > 0 AND sum(ships AND delivered_at IS NULL) = 0
             THEN max(CASE WHEN ships THEN delivered_at END) END AS delivered_at,
        max(CASE WHEN ships THEN estimated_delivery_at END) AS estimated_delivery_at
 FROM (SELECT order_id, shipped_at, delivered_at, estimated_delivery_at, fulfillment_status = :ships AS ships
       FROM parcel WHERE order_id IN (SELECT value FROM json_each(:ids))) AS listed
 GROUP BY order_id) AS f"""
_SQLITE_REFRESH_ORDERS = tuple(text(f"""
UPDATE orders SET {column} = {value}, updated_at = CURRENT_TIMESTAMP
FROM {_SQLITE_FACTS}
WHERE orders.id = f.order_id AND orders.{column} IS NOT {value}""") for column, value in (  # noqa: S608
    ("fulfilled_at", "f.fulfilled_at"), ("delivered_at", "f.delivered_at"),
    ("estimated_delivery_at", "coalesce(f.estimated_delivery_at, orders.estimated_delivery_at)")))


def advance_parcels_bulk(session: Session, new: dict[int, list[Any]]) -> set[int]:
    """Move parcels on by the events just stored for them in set-based statements; return the orders whose
    delivery or estimate moved. The rule of ``plugin.sync.parcels.advance_parcels``."""
    if session.get_bind().dialect.name == "postgresql":
        return advance_parcels_staged(session, new)
    if not new:
        return set()
    # Every row from the first new id on was stored by this batch (see above).
    first = {"first": min(row.id for rows in new.values() for row in rows)}
    moved = set(session.execute(_SQLITE_MOVED, first).scalars())
    session.execute(_SQLITE_ADVANCE, first)
    return moved


def refresh_orders_bulk(session: Session, order_ids: Iterable[int], ships: str) -> None:
    """Make each order follow its parcels in one UPDATE; the rule of ``plugin.sync.parcels.refresh_orders``."""
    if session.get_bind().dialect.name == "postgresql":
        refresh_orders_staged(session, order_ids, ships)
        return
    ids = sorted(set(order_ids))
    if ids:
        params = {"ids": json.dumps(ids), "ships": ships}
        for statement in _SQLITE_REFRESH_ORDERS:
            session.execute(statement, params)
