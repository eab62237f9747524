"""Operator counters kept in the database: job runs and durations, marketplace API calls, throttles and 429s.

A counter in process memory would differ per gunicorn worker, scheduler and Celery worker, and vanish on
restart; these rows are summed by one atomic upsert per series, so `/metrics` (plugin/metrics.py) reads one
total whichever process answers the scrape. The job runner writes them once per job run, never per call.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from plugin.models import MetricCounter

# Upper bounds (seconds) of the job duration histogram: a webhook batch takes well under a second, a backfill
# may take most of an hour.
JOB_DURATION_BUCKETS: tuple[float, ...] = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)

# What a marketplace client reports, by counter name: ``api_calls`` requests sent, ``api_throttled`` refusals for
# a rate limit (Shopify THROTTLED or HTTP 429, Amazon 429), ``api_http_429`` HTTP 429 answers alone,
# ``api_retries`` attempts repeated after any transient failure.
API_COUNTERS = ("api_calls", "api_throttled", "api_http_429", "api_retries")


def label_text(labels: Mapping[str, str]) -> str:
    """Return the canonical text of a series' labels: ``k=v`` pairs sorted by name, comma-separated."""
    for key, value in labels.items():
        if any(c in f"{key}{value}" for c in ",="):
            raise ValueError(f"label {key}={value!r} may not contain ',' or '='")
    return ",".join(f"{key}={labels[key]}" for key in sorted(labels))


def parse_labels(text: str) -> dict[str, str]:
    """Return the labels of a series from their canonical text (the inverse of label_text)."""
    return dict(pair.split("=", 1) for pair in text.split(",")) if text else {}


def add(session: Session, increments: Iterable[tuple[str, Mapping[str, str], float]]) -> None:
    """Add each (metric, labels, amount) to its counter in one upsert per series (atomic across processes).

    An amount of 0 still creates the series, so a job's failure counter reads 0 before its first failure.
    """
    totals: dict[tuple[str, str], float] = {}
    for metric, labels, amount in increments:
        key = (metric, label_text(labels))
        totals[key] = totals.get(key, 0.0) + float(amount)
    if not totals:
        return
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    # Sorted, so two processes adding to the same series lock their rows in the same order (no deadlock).
    for (metric, labels), amount in sorted(totals.items()):
        stmt = insert(MetricCounter).values(metric=metric, labels=labels, value=amount)
        session.execute(stmt.on_conflict_do_update(index_elements=["metric", "labels"],
                                                   set_={"value": MetricCounter.value + stmt.excluded.value}))


def job_run_increments(job: str, seconds: float, failed_stores: int,
                       ok: bool) -> list[tuple[str, Mapping[str, str], float]]:
    """Return the counter increments of one job run: outcome, failed stores and the duration histogram."""
    rows: list[tuple[str, Mapping[str, str], float]] = [
        ("job_runs", {"job": job, "outcome": "ok" if ok else "failed"}, 1),
        ("job_store_failures", {"job": job}, failed_stores),
        ("job_duration_count", {"job": job}, 1),
        ("job_duration_sum", {"job": job}, seconds),
    ]
    # Cumulative buckets, as Prometheus histograms are: a run counts in every bucket at or above its duration.
    rows += [("job_duration_bucket", {"job": job, "le": repr(bound)}, 1)
             for bound in JOB_DURATION_BUCKETS if seconds <= bound]
    rows.append(("job_duration_bucket", {"job": job, "le": "+Inf"}, 1))
    return rows


@dataclass
class ApiMeter:
    """The marketplace clients one job run built, read once when the run ends (JobContext.meter).

    Clients keep their own counts (ShopifyClient.stats, SpApiSession.stats); the meter only remembers where
    they are, so connectors stay free of the database.
    """

    _clients: list[tuple[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def track(self, api: str, stats: Any) -> None:
        """Remember a client's stats object (a ClientStats or the SP-API session's dict) under ``api``."""
        with self._lock:
            self._clients.append((api, stats))

    def increments(self) -> list[tuple[str, Mapping[str, str], float]]:
        """Return what every tracked client did, as counter increments labelled by ``api``."""
        with self._lock:
            clients = list(self._clients)
        rows: list[tuple[str, Mapping[str, str], float]] = []
        for api, stats in clients:
            values = stats if isinstance(stats, Mapping) else vars(stats)
            # Amazon throttles only with HTTP 429 (QuotaExceeded); Shopify counts its 429s apart from THROTTLED.
            http_429 = values.get("http_429", values.get("throttled", 0) if api == "amazon" else 0)
            for name, amount in (("api_calls", values.get("calls", 0)), ("api_throttled", values.get("throttled", 0)),
                                 ("api_http_429", http_429), ("api_retries", values.get("retries", 0))):
                rows.append((name, {"api": api}, amount))
        return rows
