"""Dispatch rate to the local SMTP sandbox: N customer emails rendered, policy-checked and sent.

Usage: .venv/bin/python bench/dispatch.py [--messages 1000] [--batch 100] [--database-url URL]
Prints emails/s (wall and per dispatcher CPU-second, since the machine may be shared) for claim + policy + render
+ SMTP + result commit, one message at a time, to the SMTP sandbox running in its own process.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.fernet import Fernet  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from jobs.dispatch import dispatch_due  # noqa: E402
from plugin.config import load_config  # noqa: E402
from plugin.context import JobContext  # noqa: E402
from plugin.db import Database  # noqa: E402
from plugin.messaging import outbox  # noqa: E402
from plugin.migrate import upgrade  # noqa: E402
from plugin.models import Base, Customer, Merchant, Message, Store  # noqa: E402

NOW = datetime(2026, 3, 3, 9, 30, tzinfo=UTC)


class RunningClock:
    """Starts at NOW (inside the send window) and runs with the wall clock, so stored times measure real gaps."""

    def __init__(self) -> None:
        self._start = time.perf_counter()

    def now(self) -> datetime:
        return NOW + timedelta(seconds=time.perf_counter() - self._start)


def seed(database: Database, count: int) -> None:
    with database.session() as s:
        merchant = Merchant(name="Bench", sender_name="Bench Shop", sender_email="shop@bench.example")
        s.add(merchant)
        s.flush()
        store = Store(merchant_id=merchant.id, platform="shopify", external_id="bench.myshopify.com", name="Bench",
                      timezone="Europe/London", country="GB",
                      postal_address="4 Mill Lane, Leeds LS1 4AB, United Kingdom")
        s.add(store)
        s.flush()
        for n in range(count):
            customer = Customer(store_id=store.id, external_id=f"c{n}", email=f"c{n}@bench.example",
                                first_name=f"C{n}", locale=("en", "de", "fr", "ja", "ar")[n % 5], country="GB",
                                time_zone="Europe/London", marketing_consent=True)
            s.add(customer)
            s.flush()
            outbox.enqueue(s, store_id=store.id, flow="review_request", channel="email",
                           idempotency_key=f"bench:{n}", scheduled_for=NOW - timedelta(minutes=1),
                           customer_id=customer.id, to_address=customer.email, payload={"order_name": f"#{n}"})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=20, help="messages sent before timing starts")
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="aftercare-bench-")
    url = args.database_url or f"sqlite:///{tmp}/bench.sqlite"
    database = Database(url)
    Base.metadata.drop_all(database.engine)
    with database.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    upgrade(url)
    seed(database, args.messages + args.warmup)
    # The SMTP server runs in its own process, as a real one would: it must not share our GIL.
    port, outbox_dir = free_port(), Path(tmp) / "outbox"
    server = subprocess.Popen(
        [sys.executable, "-c", f"from sandbox.smtp import serve; serve({port}, {str(outbox_dir)!r})"],
        cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE, text=True,
        # A shell in the background starts us with SIGINT ignored; the server must still stop on it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # noqa: PLW1509
    try:
        assert server.stdout is not None and "listening" in server.stdout.readline()
        config = load_config({"database_url": url, "app": {"instance_path": tmp},
                              "secrets": {"secret_key": "bench-secret",
                                          "encryption_key": Fernet.generate_key().decode(),
                                          "smtp_url": f"smtp://127.0.0.1:{port}"}}, environ={})
        ctx = JobContext(config=config, database=database, vault=None, clock=RunningClock())  # type: ignore[arg-type]
        dispatch_due(ctx, limit=args.warmup)
        started, cpu_started = time.perf_counter(), time.process_time()
        total = 0
        while True:
            counts = dispatch_due(ctx, limit=args.batch)
            if not counts.get("sent"):
                break
            total += counts["sent"]
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    received = len(list(outbox_dir.glob("*.eml")))
    with database.session() as s:
        left = s.scalar(select(func.count(Message.id)).where(Message.status != "sent"))
    with database.session() as s:
        gaps = sorted((sent - handed).total_seconds() * 1000 for sent, handed in s.execute(
            select(Message.sent_at, Message.handed_at).where(Message.status == "sent", Message.handed_at.is_not(None))))
    load = os.getloadavg()[0]
    print(f"database: {database.dialect}; messages: {total} timed (+{args.warmup} warm-up); batch: {args.batch}")
    print(f"sent {total} (server received {received} incl. warm-up, not sent {left}) in {elapsed:.2f} s "
          f"= {total / elapsed:.1f} emails/s wall; dispatcher CPU {cpu:.2f} s "
          f"= {total / cpu:.1f} emails per CPU-second")
    if gaps:
        # sent_at is taken after the server's 250 to DATA, so this bounds the window from above.
        print(f"last check -> server accepted DATA (the remaining window, upper bound): median "
              f"{gaps[len(gaps) // 2]:.1f} ms, p99 {gaps[int(len(gaps) * 0.99)]:.1f} ms, max {gaps[-1]:.1f} ms")
    print(f"machine: {platform.platform()}, {os.cpu_count()} cpus, load average {load:.1f}, "
          f"Python {platform.python_version()}")


if __name__ == "__main__":
    main()
