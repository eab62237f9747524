"""`GET /metrics` for Prometheus: every figure read from the database when scraped, none kept in a worker.

Gauges (webhooks waiting, outbox due/sending/failed, the scheduler lease) are counted at scrape time; counters
come from persisted rows — sends, skips and cancels from the message log, job runs and marketplace API calls
from ``metric_counter`` (plugin/ops_counters.py). So whichever gunicorn worker answers, the figures agree.
Off unless ``metrics.enabled``; a scrape must send ``Authorization: Bearer $AFTERCARE_METRICS_TOKEN``.
https://prometheus.io/docs/instrumenting/writing_exporters/#collectors
"""

from __future__ import annotations

import hmac
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime

from flask import Blueprint, Flask, Response, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from base.clock import Clock
from plugin.db import Database
from plugin.models import SCHEDULER_LEASE, Message, MetricCounter, SchedulerLease, WebhookEvent
from plugin.ops_counters import JOB_DURATION_BUCKETS, parse_labels

bp = Blueprint("metrics", __name__)

PREFIX = "aftercare"

# metric_counter name -> (exposed counter name, help)
_COUNTERS = {
    "api_calls": ("api_calls", "Marketplace API requests sent by the jobs."),
    "api_throttled": ("api_throttled", "Marketplace refusals for a rate limit (Shopify THROTTLED or 429, Amazon 429)."),
    "api_http_429": ("api_http_429", "Marketplace answers with HTTP 429 Too Many Requests."),
    "api_retries": ("api_retries", "Marketplace requests repeated after a transient failure."),
    "job_runs": ("job_runs", "Job runs by outcome (failed: at least one store failed)."),
    "job_store_failures": ("job_store_failures", "Store runs of a job that failed."),
}


class DatabaseCollector:
    """Read every figure from the database at collect time (a custom collector of prometheus_client)."""

    def __init__(self, database: Database, clock: Clock):
        self.database = database
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        """Yield the metric families, all read in one short read-only transaction."""
        now = self.clock.now()
        with self.database.sessionmaker() as session:
            yield from _webhooks(session, now)
            yield from _outbox(session, now)
            yield from _message_log(session)
            yield from _counters(session)
            yield from _lease(session, now)


def _webhooks(session: Session, now: datetime) -> Iterator[Metric]:
    waiting = (WebhookEvent.processed_at.is_(None), WebhookEvent.failed_at.is_(None))
    count, oldest = session.execute(
        select(func.count(), func.min(WebhookEvent.received_at)).where(*waiting)).one()
    yield GaugeMetricFamily(f"{PREFIX}_webhooks_waiting", "Stored webhooks not processed yet.", value=count)
    age = max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
    yield GaugeMetricFamily(f"{PREFIX}_webhooks_oldest_waiting_age_seconds",
                            "Age of the oldest webhook waiting (0 when none waits).", value=age)
    failed = session.scalar(select(func.count()).where(WebhookEvent.failed_at.is_not(None)))
    yield GaugeMetricFamily(f"{PREFIX}_webhooks_failed", "Webhooks given up on (listed in the admin).", value=failed)


def _outbox(session: Session, now: datetime) -> Iterator[Metric]:
    due = session.scalar(select(func.count()).where(Message.status == "scheduled", Message.scheduled_for <= now))
    yield GaugeMetricFamily(f"{PREFIX}_outbox_due", "Outbox messages scheduled for now or earlier.", value=due)
    for status in ("sending", "failed"):
        count = session.scalar(select(func.count()).where(Message.status == status))
        yield GaugeMetricFamily(f"{PREFIX}_outbox_{status}", f"Outbox messages in status {status}.", value=count)


def _message_log(session: Session) -> Iterator[Metric]:
    sent = CounterMetricFamily(f"{PREFIX}_messages_sent", "Messages sent, by flow and channel.",
                               labels=["flow", "channel"])
    for flow, channel, count in session.execute(
            select(Message.flow, Message.channel, func.count()).where(Message.status == "sent")
            .group_by(Message.flow, Message.channel).order_by(Message.flow, Message.channel)):
        sent.add_metric([flow, channel], count)
    yield sent
    for status, what in (("skipped", "Messages skipped"), ("cancelled", "Messages cancelled")):
        family = CounterMetricFamily(f"{PREFIX}_messages_{status}", f"{what}, by flow and reason code.",
                                     labels=["flow", "reason"])
        reason = func.coalesce(Message.skip_reason, "")
        for flow, code, count in session.execute(
                select(Message.flow, reason, func.count()).where(Message.status == status)
                .group_by(Message.flow, reason).order_by(Message.flow, reason)):
            family.add_metric([flow, code], count)
        yield family


def _counters(session: Session) -> Iterator[Metric]:
    rows: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    for metric, labels, value in session.execute(
            select(MetricCounter.metric, MetricCounter.labels, MetricCounter.value)
            .order_by(MetricCounter.metric, MetricCounter.labels)):
        rows[metric].append((parse_labels(labels), value))
    for metric, (name, doc) in _COUNTERS.items():
        label_names = ["api"] if metric.startswith("api_") else ["job", "outcome"] if metric == "job_runs" else ["job"]
        family = CounterMetricFamily(f"{PREFIX}_{name}", doc, labels=label_names)
        for labels, value in rows.get(metric, []):
            family.add_metric([labels.get(n, "") for n in label_names], value)
        yield family
    yield _job_durations(rows)


def _job_durations(rows: dict[str, list[tuple[dict[str, str], float]]]) -> Metric:
    family = HistogramMetricFamily(f"{PREFIX}_job_duration_seconds", "Wall time of job runs.", labels=["job"])
    sums = {labels["job"]: value for labels, value in rows.get("job_duration_sum", [])}
    buckets: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for labels, value in rows.get("job_duration_bucket", []):
        buckets[labels["job"]].append((labels["le"], value))
    for job in sorted(buckets):
        ordered = sorted(buckets[job], key=lambda item: float(item[0]))
        family.add_metric([job], buckets=_cumulative(ordered), sum_value=sums.get(job, 0.0))
    return family


def _cumulative(stored: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """Return the buckets with every bound present: a bound no run fell under is stored nowhere, and takes the
    count of the bound below it (0 for the first)."""
    counts = dict(stored)
    out: list[tuple[str, float]] = []
    previous = 0.0
    for bound in (*(repr(b) for b in JOB_DURATION_BUCKETS), "+Inf"):
        previous = counts.get(bound, previous)
        out.append((bound, previous))
    return out


def _lease(session: Session, now: datetime) -> Iterator[Metric]:
    lease = session.get(SchedulerLease, SCHEDULER_LEASE)
    held = lease is not None and lease.expires_at > now
    holder = GaugeMetricFamily(f"{PREFIX}_scheduler_lease_holder",
                               "1 for the scheduler holding the lease now; no series when nobody does.",
                               labels=["holder"])
    if held:
        holder.add_metric([lease.holder], 1)
    yield holder
    yield GaugeMetricFamily(f"{PREFIX}_scheduler_lease_held", "1 when a scheduler holds the lease, else 0.",
                            value=1 if held else 0)
    remaining = (lease.expires_at - now).total_seconds() if held else 0.0
    yield GaugeMetricFamily(f"{PREFIX}_scheduler_lease_expires_in_seconds",
                            "Seconds until the holder must renew the lease (0 when nobody holds it).", value=remaining)


def authorized(token: str) -> bool:
    """Say whether the request carries ``Authorization: Bearer <token>`` (compared in constant time)."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


@bp.get("/metrics")
def metrics() -> Response:
    """Answer the Prometheus text exposition of every figure, or 401 without the right token."""
    from plugin import get_clock, get_config
    from plugin.db import get_db

    if not authorized(get_config().secrets.metrics_token):
        return Response("metrics need Authorization: Bearer <AFTERCARE_METRICS_TOKEN>\n", status=401,
                        headers={"WWW-Authenticate": 'Bearer realm="metrics"'}, mimetype="text/plain")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(get_db(), get_clock()))  # type: ignore[arg-type]
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})


def init_app(app: Flask) -> None:
    """Serve /metrics only when ``metrics.enabled`` (off by default)."""
    from plugin import get_config

    if get_config(app).get("metrics.enabled"):
        app.register_blueprint(bp)
