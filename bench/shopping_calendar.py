"""How long the shopping-calendar flow needs to decide who is due, on 1,000,000 customers (limit: 10 s per run).

Usage:
    .venv/bin/python bench/shopping_calendar.py sqlite   [--path FILE] [--customers N]
    .venv/bin/python bench/shopping_calendar.py postgres [--url postgresql+psycopg://postgres@127.0.0.1:5432/aftercare_bench_cal]

Customers are generated with bulk SQL, spread over countries and zones like a cross-border store (40 % US in four
zones, GB, DE, JP, CN, IN, SA, BR, and 10 % with neither country nor zone) and over the analytics segments (20 %
growth, 50 % active, 5 % VIP, 25 % dormant), so the flow reads ``customer_metrics`` as it does on a live store.
The flow runs hourly, as the scheduler runs it, from 22 November 2026 00:00 UTC to 25 November 12:00 UTC
(Black Friday's emails are on the 24th at 09:00 local), each run committed; every run that writes rows is
printed with its time beside the limit, then the slowest run and a quiet hour (no event within reach).
Rows are planned up to 48 hours ahead, at most ``PER_RUN`` a run, so no run writes the whole morning at once.
"""

# The data-generation SQL is assembled from integer constants of this script, never from input.
# ruff: noqa: S608

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pg_database import open_database
from sqlalchemy import text

from plugin import flow_settings
from plugin.config import load_config
from plugin.db import Database
from plugin.flows import shopping_calendar
from plugin.flows.base import FlowRun
from plugin.messaging.outbox import schedule
from plugin.models import Base, Store

LIMIT_SECONDS = 10.0
START = datetime(2026, 11, 22, 0, 0, tzinfo=UTC)
END = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
QUIET_HOUR = datetime(2026, 8, 20, 14, 0, tzinfo=UTC)
# (share of 100, country, zone): customer g takes the place of g % 100.
PLACES = ([(16, "US", "America/New_York"), (12, "US", "America/Chicago"), (4, "US", "America/Denver"),
           (8, "US", "America/Los_Angeles"), (10, "GB", "Europe/London"), (8, "DE", "Europe/Berlin"),
           (8, "JP", "Asia/Tokyo"), (6, "CN", "Asia/Shanghai"), (6, "IN", "Asia/Kolkata"),
           (6, "SA", "Asia/Riyadh"), (6, "BR", "America/Sao_Paulo"), (10, None, None)])
SEGMENTS = [(20, "growth"), (50, "active"), (5, "vip"), (25, "dormant")]


def _case(column: str, spread: list[tuple[Any, ...]], pick: Callable[[tuple[Any, ...]], Any], key: str) -> str:
    """Return a CASE over ``key % 100`` giving each share of the spread its value."""
    parts, upto = [], 0
    for item in spread:
        upto += item[0]
        value = pick(item)
        parts.append(f"WHEN {key} % 100 < {upto} THEN {'NULL' if value is None else repr(value)}")
    return f"CASE {' '.join(parts)} END AS {column}"


def generate(db: Database, customers: int) -> None:
    """Fill an empty schema with one store, its customers and their segments."""
    pg = db.dialect == "postgresql"
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO merchant (id, name, settings, alert_email) "
                          "VALUES (1, 'Bench', '{}', 'alerts@bench.test')"))
        conn.execute(text("INSERT INTO store (id, merchant_id, platform, external_id, name, currency, timezone, "
                          "country, primary_locale, status, scopes, protected_data_access, marketplace_ids) VALUES "
                          "(1, 1, 'shopify', 'bench.myshopify.com', 'Bench', 'USD', 'America/New_York', 'US', 'en', "
                          "'active', '', :t, '[]')"), {"t": True})
    started = time.perf_counter()
    seq = (f"SELECT g FROM generate_series(1::bigint, {customers}) g" if pg else
           f"WITH RECURSIVE seq(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM seq WHERE g < {customers}) "
           "SELECT g FROM seq")
    country = _case("country", PLACES, lambda p: p[1], "g")
    zone = _case("time_zone", PLACES, lambda p: p[2], "g")
    # The segment hashes g differently from the place, so every place has every segment.
    segment = _case("segment", SEGMENTS, lambda s: s[1], "(g * 7919)")
    with db.engine.begin() as conn:
        conn.execute(text(f"""
            INSERT INTO customer (id, store_id, external_id, email, locale, country, time_zone, marketing_consent,
                                  tags, created_at, updated_at)
            SELECT g, 1, 'c' || g, 'c' || g || '@bench.test', 'en', country, time_zone, (g % 2 = 0), '[]',
                   '2026-01-01', '2026-01-01'
            FROM (SELECT g, {country}, {zone} FROM ({seq}) s) t"""))
        conn.execute(text(f"""
            INSERT INTO customer_metrics (customer_id, store_id, orders_count, total_spent, spent_12m, orders_12m,
                                          largest_order, segment, computed_at)
            SELECT g, 1, 1, 250, 250, 1, 250, segment, '2026-11-01'
            FROM (SELECT g, {segment} FROM ({seq}) s) t"""))
    print(f"  generated {customers:,} customers and their segments in {time.perf_counter() - started:.1f} s",
          flush=True)
    with db.engine.begin() as conn:
        conn.execute(text("ANALYZE"))


def run(db: Database) -> dict[str, float]:
    """Run the flow hourly over Black Friday's emails (committed), then a quiet hour; return the figures."""
    config = load_config({"database_url": db.url, "secrets": {"secret_key": "bench-secret-key-0123456789",
                                                               "encryption_key": _fernet()}}, environ={})
    flow = shopping_calendar.FLOW
    settings = flow.settings.load(flow_settings.defaults(config, flow.settings_section))
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM message"))  # a reused database starts with an empty outbox

    def hour(now: datetime, keep: bool) -> tuple[float, float, int]:
        with db.sessionmaker() as session:
            started, cpu = time.perf_counter(), time.process_time()
            run_ = FlowRun(session=session, config=config, store=session.get(Store, 1), settings=settings, now=now)
            rows = shopping_calendar.due_event_emails(run_)
            schedule(session, rows, now)
            if keep:
                session.commit()
            else:
                session.rollback()
            return time.perf_counter() - started, time.process_time() - cpu, len(rows)

    # CPU seconds of this process beside the wall clock: on a shared machine the wall clock counts other
    # processes' turns; on SQLite the database works inside this process, so its CPU time is the run's own cost.
    print(f"  {'hourly run (UTC)':<32} {'wall s':>8} {'CPU s':>8} {'limit':>7} {'rows':>9}")
    slowest, slowest_cpu, total, now = 0.0, 0.0, 0, START
    while now <= END:
        seconds, cpu, rows = hour(now, keep=True)
        slowest, slowest_cpu, total = max(slowest, seconds), max(slowest_cpu, cpu), total + rows
        if rows:
            print(f"  {now:%d %b %H:%M}{'':<20} {seconds:8.2f} {cpu:8.2f} {LIMIT_SECONDS:7.1f} {rows:9,}", flush=True)
        now += timedelta(hours=1)
    quiet, quiet_cpu, _rows = hour(QUIET_HOUR, keep=False)
    print(f"  {'slowest run':<32} {slowest:8.2f} {slowest_cpu:8.2f} {LIMIT_SECONDS:7.1f} {total:9,} planned in all")
    print(f"  {'quiet hour: no event within reach':<32} {quiet:8.2f} {quiet_cpu:8.2f} {LIMIT_SECONDS:7.1f}")
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM message"))
    return {"slowest": slowest, "slowest_cpu": slowest_cpu, "quiet": quiet}


def _fernet() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dialect", choices=["sqlite", "postgres"])
    parser.add_argument("--path", default=str(Path(tempfile.gettempdir()) / "aftercare-bench-calendar.sqlite"))
    parser.add_argument("--url", default="postgresql+psycopg://postgres@127.0.0.1:5432/aftercare_bench_cal")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--reuse", action="store_true", help="keep existing data (skip generation)")
    args = parser.parse_args()
    _url, db = open_database(args.dialect, args.path, args.url, args.reuse)
    print(f"{db.dialect}: {args.customers:,} customers", flush=True)
    if not args.reuse:
        Base.metadata.drop_all(db.engine)
        Base.metadata.create_all(db.engine)
        generate(db, args.customers)
    run(db)
    db.dispose()


if __name__ == "__main__":
    main()
