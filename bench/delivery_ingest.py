"""100,000 carrier events through the product's ingest path, beside a raw insert of the same rows (issue 13).

Setup (not timed): an empty migrated database, one Shopify store, 20,000 orders with one parcel each (inserted
directly, each order already fulfilled at its parcel's shipping time, as the fulfilment's sync or webhook leaves it
before carriers report). Then, in the same run and on the same database:

- **ingest**: ``plugin.sync.parcels.ingest_events`` (events in the order carriers report them, 2 % late) — what
  the ``fulfillment_events/create`` webhook and the sync's event pass call — in transactions of 1,000 events:
  parcel lookup by fulfilment id, the events stored once per id (``ON CONFLICT DO NOTHING``), then each touched
  parcel moved on (a late event or a delivery: derived again from all its events) and each touched order made to
  follow its parcels, in set-based statements (plugin.sync.parcels_staged; on PostgreSQL the batch is COPYed into
  a staging table first);
- **replay**: the same 100,000 events again through the same path (every one a duplicate: nothing changes);
- **raw**: the events deleted, then the same rows inserted with a plain ``INSERT`` executemany in transactions of
  1,000 (no lookup, no conflict handling, no derivation) — the floor the ingest is held against.

The target is ingest throughput ≥ 0.5 × raw throughput. On SQLite the run also counts the database pages each
side writes (``--pages``: the WAL's frames by table and index, WAL checkpoints off for that count), which does not
move with the machine's load as the seconds do.

    .venv/bin/python bench/delivery_ingest.py                         # SQLite and PostgreSQL
    .venv/bin/python bench/delivery_ingest.py --databases sqlite --events 20000
    .venv/bin/python bench/delivery_ingest.py --databases sqlite --pages    # + pages written, by table and index
    .venv/bin/python bench/delivery_ingest.py --random-ids                  # parcels shipped in random id order
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sqlite3
import struct
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import delete, event, func, insert, select, text  # noqa: E402

from bench.pg_database import open_database  # noqa: E402
from connectors.records import FulfillmentEventRecord  # noqa: E402
from plugin.migrate import upgrade  # noqa: E402
from plugin.models import Merchant, Order, Parcel, ParcelEvent, Store  # noqa: E402
from plugin.sync.parcels import event_gid, fulfillment_gid, ingest_events  # noqa: E402

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/aftercare_bench_delivery"
TARGET = 0.5
BATCH = 1000
# A parcel's life, in order (the last may be any of the ends).
PATH = ("CONFIRMED", "IN_TRANSIT", "IN_TRANSIT", "OUT_FOR_DELIVERY")
ENDS = ("DELIVERED", "DELIVERED", "DELIVERED", "ATTEMPTED_DELIVERY", "DELAYED", "FAILURE")


def events(parcels: int, total: int, seed: int = 13, random_ids: bool = False) -> list[FulfillmentEventRecord]:
    """Return ``total`` events spread over ``parcels`` parcels (five each) in the order carriers report them
    (by time, parcels interleaved), with 2 % of events arriving late (after a later event of their parcel).

    Parcels ship in the order of their ids, as a store's do (a parcel's row is written when it ships), so the
    parcels in transit together sit near each other; ``random_ids`` ships them in random order instead (the shape
    of this bench before 2026-12-04: every batch then touches parcel and order pages all over the tables).
    """
    rng = random.Random(seed)
    result = []
    per = max(total // parcels, 1)
    shipped_at = [NOW - timedelta(days=rng.uniform(1, 60)) for _ in range(parcels)]
    if not random_ids:
        shipped_at.sort()
    for k in range(parcels):
        shipped = shipped_at[k]
        statuses = [*PATH, rng.choice(ENDS)][:per]
        for n, status in enumerate(statuses):
            result.append(FulfillmentEventRecord(
                external_id=str(10_000_000 + k * 10 + n), fulfillment_id=str(k + 1), status=status,
                happened_at=shipped + timedelta(hours=12 * n + rng.uniform(0, 6)),
                estimated_delivery_at=shipped + timedelta(days=4), city="Memphis", country="United States",
                message="Scan"))
    result.sort(key=lambda e: e.happened_at)
    for k in range(0, len(result) - 60, 50):  # a late webhook now and then: swapped with one 50 places on
        result[k], result[k + 50] = result[k + 50], result[k]
    return result[:total]


def seed(database, parcels: int) -> int:
    """Create the store, its orders and parcels; return the store id."""
    with database.session() as session:
        merchant = Merchant(name="Bench")
        session.add(merchant)
        session.flush()
        store = Store(merchant_id=merchant.id, platform="shopify", external_id="bench-delivery.myshopify.com",
                      name="Bench", currency="USD", timezone="America/New_York", primary_locale="en", country="US",
                      status="active", installed_at=NOW, marketplace_ids=[])
        session.add(store)
        session.flush()
        store_id = store.id
        for offset in range(0, parcels, 5000):
            n = range(offset, min(offset + 5000, parcels))
            session.execute(insert(Order), [{"store_id": store_id, "external_id": str(k + 1), "name": f"#{k + 1001}",
                                             "created_at_remote": NOW - timedelta(days=61), "currency": "USD",
                                             "fulfilled_at": NOW - timedelta(days=61), "tags": []} for k in n])
        ids = dict(session.execute(select(Order.external_id, Order.id).where(Order.store_id == store_id)).all())
        for offset in range(0, parcels, 5000):
            n = range(offset, min(offset + 5000, parcels))
            session.execute(insert(Parcel), [{"store_id": store_id, "order_id": ids[str(k + 1)],
                                              "fulfillment_gid": fulfillment_gid(str(k + 1)),
                                              "fulfillment_status": "SUCCESS",
                                              "shipped_at": NOW - timedelta(days=61)} for k in n])
    return store_id


def timed_ingest(database, store_id: int, data: list[FulfillmentEventRecord]) -> tuple[float, int]:
    """Ingest in transactions of BATCH events; return (seconds, events newly stored)."""
    stored = 0
    started = time.perf_counter()
    for offset in range(0, len(data), BATCH):
        with database.session() as session:
            stored += ingest_events(session, store_id, data[offset:offset + BATCH], batch_size=BATCH).stored
    return time.perf_counter() - started, stored


def timed_raw(database, store_id: int, data: list[FulfillmentEventRecord]) -> float:
    """Insert the same rows with a plain executemany (parcel ids known beforehand); return seconds."""
    with database.session() as session:
        session.execute(delete(ParcelEvent).where(ParcelEvent.store_id == store_id))
        parcel_ids = dict(session.execute(select(Parcel.fulfillment_gid, Parcel.id)
                                          .where(Parcel.store_id == store_id)).all())
    rows = [{"store_id": store_id, "parcel_id": parcel_ids[fulfillment_gid(e.fulfillment_id)],
             "event_gid": event_gid(e.external_id), "status": e.status, "happened_at": e.happened_at,
             "estimated_delivery_at": e.estimated_delivery_at, "city": e.city, "province": e.province,
             "country": e.country, "message": e.message} for e in data]
    started = time.perf_counter()
    for offset in range(0, len(rows), BATCH):
        with database.session() as session:
            session.execute(insert(ParcelEvent), rows[offset:offset + BATCH])
    return time.perf_counter() - started


def _wal_frames(path: str) -> Counter[str]:
    """Count the frames of the SQLite file's WAL by the table or index that owns each page (https://sqlite.org/fileformat2.html#the_write_ahead_log)."""
    with sqlite3.connect(path) as conn:
        owner = dict(conn.execute("SELECT pageno, name FROM dbstat"))
    data = Path(path + "-wal").read_bytes()
    page_size = struct.unpack(">I", data[8:12])[0]
    frames: Counter[str] = Counter()
    for offset in range(32, len(data) - page_size - 23, page_size + 24):  # 32-byte header; 24-byte frame headers
        frames[owner.get(struct.unpack(">I", data[offset:offset + 4])[0], "?")] += 1
    return frames


def _checkpoint(database, path: str) -> None:
    """Empty the WAL into the database file (every pooled connection closed first)."""
    database.dispose()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def pages(total: int, parcels: int, random_ids: bool) -> tuple[Counter[str], Counter[str]]:
    """Return the pages the ingest and the raw insert write on SQLite, by table or index (WAL checkpoints off)."""
    path = os.path.join(tempfile.gettempdir(), "aftercare-bench-delivery-pages.sqlite")
    url, database = open_database("sqlite", path, PG_URL, reuse=False)
    database.dispose()
    upgrade(url)
    url, database = open_database("sqlite", path, PG_URL, reuse=True)

    @event.listens_for(database.engine, "connect")
    def _keep_wal(dbapi_conn, _record) -> None:
        dbapi_conn.execute("PRAGMA wal_autocheckpoint=0")

    store_id = seed(database, parcels)
    data = events(parcels, total, random_ids=random_ids)
    _checkpoint(database, path)
    timed_ingest(database, store_id, data)
    ingest = _wal_frames(path)
    _checkpoint(database, path)
    with database.session() as session:  # the raw side starts from an empty events table, as in the timed run
        session.execute(delete(ParcelEvent).where(ParcelEvent.store_id == store_id))
    _checkpoint(database, path)
    timed_raw(database, store_id, data)
    raw = _wal_frames(path)
    database.dispose()
    return ingest, raw


def run(dialect: str, total: int, parcels: int, random_ids: bool) -> dict[str, float]:
    """Run the three timings on one database kind; return the figures."""
    path = os.path.join(tempfile.gettempdir(), "aftercare-bench-delivery.sqlite")
    url, database = open_database(dialect, path, PG_URL, reuse=False)
    if dialect == "postgresql":
        with database.session() as session:
            session.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    database.dispose()
    upgrade(url)
    url, database = open_database(dialect, path, PG_URL, reuse=True)
    store_id = seed(database, parcels)
    data = events(parcels, total, random_ids=random_ids)
    ingest_s, stored = timed_ingest(database, store_id, data)
    with database.session() as session:
        delivered = session.scalar(select(func.count(Parcel.id)).where(Parcel.status == "DELIVERED"))
        orders_delivered = session.scalar(select(func.count(Order.id)).where(Order.delivered_at.is_not(None)))
    replay_s, replay_stored = timed_ingest(database, store_id, data)
    raw_s = timed_raw(database, store_id, data)
    database.dispose()
    return {"events": len(data), "stored": stored, "replay_stored": replay_stored, "ingest_s": ingest_s,
            "replay_s": replay_s, "raw_s": raw_s, "delivered_parcels": delivered, "delivered_orders": orders_delivered}


def main() -> None:
    """Parse arguments, run, print the figures beside the target."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--pages", action="store_true", help="on SQLite, also count the pages each side writes")
    parser.add_argument("--random-ids", action="store_true", help="parcels ship in random order of their ids")
    args = parser.parse_args()
    parcels = args.events // 5
    load = os.getloadavg()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    for dialect in args.databases.split(","):
        f = run(dialect, args.events, parcels, args.random_ids)
        ingest_rate, raw_rate, replay_rate = f["events"] / f["ingest_s"], f["events"] / f["raw_s"], \
            f["events"] / f["replay_s"]
        ratio = ingest_rate / raw_rate
        print(f"{dialect}: {f['events']:,} events over {parcels:,} parcels, transactions of {BATCH}")
        print(f"  ingest  {f['ingest_s']:7.1f} s  {ingest_rate:9,.0f} events/s  stored {f['stored']:,}  "
              f"(parcels delivered {f['delivered_parcels']:,}, orders delivered {f['delivered_orders']:,})")
        print(f"  replay  {f['replay_s']:7.1f} s  {replay_rate:9,.0f} events/s  stored {f['replay_stored']:,}")
        print(f"  raw     {f['raw_s']:7.1f} s  {raw_rate:9,.0f} events/s")
        print(f"  ingest / raw = {ratio:.2f}  (target >= {TARGET})  {'OK' if ratio >= TARGET else 'BELOW TARGET'}")
        if dialect == "sqlite" and args.pages:
            ingest, raw = pages(args.events, parcels, args.random_ids)
            print(f"  pages written: ingest {sum(ingest.values()):,}, raw {sum(raw.values()):,} "
                  f"(raw / ingest = {sum(raw.values()) / sum(ingest.values()):.2f})")
            for name in sorted(ingest.keys() | raw.keys(), key=lambda n: -(ingest[n] + raw[n])):
                print(f"    {name:42} ingest {ingest[name]:9,}  raw {raw[name]:9,}")


if __name__ == "__main__":
    main()
