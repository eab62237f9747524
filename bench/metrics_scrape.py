"""Benchmark: time of one `GET /metrics` scrape over a big store, on SQLite and PostgreSQL.

Every figure of /metrics is read from the database at scrape time (plugin/metrics.py), so a scrape costs a few
COUNT / GROUP BY queries, the message-log ones over the whole message table. Data: bench/admin.py's store
(1,000,000 orders, 200,000 messages by default) plus 10,000 webhooks waiting, 1,000 outbox rows due, and the
operator counters of 14 jobs. The limit is Prometheus' default ``scrape_timeout`` of 10 s.

    .venv/bin/python bench/metrics_scrape.py                      # both databases, 1,000,000 orders
    .venv/bin/python bench/metrics_scrape.py --orders 100000 --databases sqlite
"""

# ruff: noqa: S608 - the SQL below interpolates only integers and constants chosen in this file, never input.
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import admin as admin_bench  # noqa: E402  - bench/admin.py: the same generated store
from cryptography.fernet import Fernet  # noqa: E402
from sqlalchemy import text  # noqa: E402

from base.clock import FrozenClock  # noqa: E402
from jobs.schedule import JOBS  # noqa: E402
from plugin import create_app  # noqa: E402
from plugin.db import Database  # noqa: E402
from plugin.ops_counters import add, job_run_increments  # noqa: E402

LIMIT_SECONDS = 10.0  # Prometheus' default scrape_timeout
TOKEN = "bench-metrics-token"  # noqa: S105 - a bench value
PG_NAME = "aftercare_bench_metrics"


def extra_rows(database: Database, webhooks: int, due: int) -> None:
    """Add waiting webhooks, due outbox rows and a day of job counters to the generated store."""
    dialect = database.dialect
    series, ts = admin_bench._series, admin_bench._ts
    statements = [
        series(dialect, webhooks, "INSERT INTO webhook_event (id, store_id, shop_domain, webhook_id, topic, "
               f"received_at, attempts) SELECT x, 1, '{admin_bench.SHOP}', 'wh-' || x, 'orders/updated', "
               + ts(dialect, "x") + ", 0 {FROM}"),
        series(dialect, due, "INSERT INTO message (id, store_id, flow, step, channel, marketing, idempotency_key, "
               "scheduled_for, status, attempts, payload) SELECT 900000000 + x, 1, 'survey', 'main', 'email', "
               f"{'FALSE' if dialect == 'postgresql' else '0'}, 'due:' || x, " + ts(dialect, "x") +
               ", 'scheduled', 0, '{}' {FROM}"),
    ]
    with database.engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))
    with database.session() as session:
        for spec in JOBS:
            add(session, job_run_increments(spec.name, 0.4, 0, True))
        add(session, [("api_calls", {"api": "shopify"}, 12345), ("api_calls", {"api": "amazon"}, 678)])
    with database.engine.begin() as conn:
        conn.execute(text("ANALYZE"))


def measure(url: str, scrapes: int) -> tuple[float, list[float], int]:
    """Return the first scrape's seconds, the timed scrapes' seconds and the body size."""
    settings = {"database_url": url, "metrics": {"enabled": True},
                "secrets": {"secret_key": "k" * 32, "encryption_key": Fernet.generate_key().decode(),
                            "metrics_token": TOKEN}}
    app = create_app(settings, clock=FrozenClock(admin_bench.NOW))
    client = app.test_client()
    headers = {"Authorization": f"Bearer {TOKEN}"}

    def once() -> tuple[float, int]:
        started = time.perf_counter()
        answer = client.get("/metrics", headers=headers)
        elapsed = time.perf_counter() - started
        assert answer.status_code == 200, answer.status_code
        return elapsed, len(answer.data)

    first, size = once()
    timed = [once()[0] for _ in range(scrapes)]
    app.extensions["aftercare.db"].dispose()
    return first, timed, size


def main() -> None:
    """Build each database, scrape, print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--scrapes", type=int, default=20)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    vault_key = Fernet.generate_key().decode()
    print(f"machine: {platform.machine()} · {admin_bench._cpu()} · Python {platform.python_version()} · "
          f"load average {os.getloadavg()[0]:.1f} at start · {args.orders:,} orders, {args.orders // 5:,} messages")
    print("\n| database | first scrape (s) | p50 (s) | p95 (s) | limit (s) | p95 / limit | body (bytes) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in args.databases.split(","):
        if name == "sqlite":
            url = f"sqlite:///{tempfile.mkdtemp()}/bench-metrics.sqlite"
        else:
            subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", PG_NAME], check=True)
            subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", PG_NAME], check=True)
            url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{PG_NAME}"
        admin_bench.build(url, args.orders, vault_key)
        database = Database(url)
        extra_rows(database, webhooks=10_000, due=1_000)
        database.dispose()
        first, timed, size = measure(url, args.scrapes)
        p50 = statistics.median(timed)
        p95 = statistics.quantiles(timed, n=20)[-1] if len(timed) > 1 else timed[0]
        print(f"| {name} | {first:.3f} | {p50:.3f} | {p95:.3f} | {LIMIT_SECONDS:.0f} | {p95 / LIMIT_SECONDS:.3f} | "
              f"{size:,} |")
        sys.stdout.flush()
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
