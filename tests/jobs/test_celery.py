"""Celery entry: a real worker (thread, solo pool) on the machine's Redis runs the same job functions."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from celery.contrib.testing.worker import start_worker
from sqlalchemy import func, select

from jobs.celery_app import make_celery, run_lease_seconds, submitter, task_name
from jobs.schedule import JOBS, acquire_lease, get_job
from plugin.config import ConfigError
from plugin.models import Message
from plugin.tickets import open_ticket
from tests.jobs import factory as f
from tests.jobs.conftest import make_ctx

BROKER = "redis://127.0.0.1:6379/0"


def _redis_up() -> bool:
    try:
        return bool(redis.Redis.from_url(BROKER, socket_timeout=2).ping())
    except redis.RedisError:
        return False


def test_broker_url_is_required(ctx):
    with pytest.raises(ConfigError, match="AFTERCARE_SCHEDULER__CELERY_BROKER_URL"):
        make_celery(ctx.config)


@pytest.mark.skipif(not _redis_up(), reason="no Redis at 127.0.0.1:6379")
def test_real_worker_runs_a_job_per_store(ctx, database, clock, tmp_path: Path):
    cfg_ctx = make_ctx(database, clock, tmp_path, scheduler={"celery_broker_url": BROKER})
    app = make_celery(cfg_ctx.config, ctx_factory=lambda: cfg_ctx)
    # A private queue per run so parallel test runs on the shared Redis never steal each other's tasks.
    app.conf.task_default_queue = f"aftercare-test-{uuid.uuid4().hex}"
    assert {task_name(spec.name) for spec in JOBS} <= set(app.tasks)
    with ctx.database.session() as s:
        a = f.store(s, alert_email="a@m.test").id
        b = f.store(s, alert_email="b@m.test").id
        open_ticket(s, ctx.config, store_id=a, source="manual", severity=1, subject="fake",
                    now=clock.now() - timedelta(hours=2))
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        results = submitter(app, cfg_ctx)(get_job("ticket_alerts"))
        got = [r.get(timeout=30) for r in results]
    # Severity 1: the urgent alert at once and, its SLA passed, the breach alert.
    assert got == [{"job": "ticket_alerts", "results": {str(a): {"urgent": 1, "alerts": 1, "opened": 0}},
                  "failures": {}},
                   {"job": "ticket_alerts", "results": {str(b): {"urgent": 0, "alerts": 0, "opened": 0}},
                  "failures": {}}]
    with ctx.database.session() as s:
        assert s.scalar(select(Message.to_address).where(Message.flow == "ticket_alert")) == "a@m.test"


def test_one_run_per_job_and_store_at_a_time(ctx, database, clock, tmp_path: Path):
    cfg_ctx = make_ctx(database, clock, tmp_path, scheduler={"celery_broker_url": BROKER})
    app = make_celery(cfg_ctx.config, ctx_factory=lambda: cfg_ctx)
    with ctx.database.session() as s:
        a = f.store(s, alert_email="a@m.test").id
        open_ticket(s, ctx.config, store_id=a, source="manual", severity=1, subject="late",
                    now=clock.now() - timedelta(hours=2))
    task = app.tasks[task_name("ticket_alerts")]  # called in this process: the body a worker runs
    # Another worker is running this job for this store: the task leaves it alone.
    assert acquire_lease(database, "other-worker", clock.now(), 300, name=f"run:ticket_alerts:{a}")
    assert task(a) == {"job": "ticket_alerts", "results": {}, "failures": {}, "skipped": "already running"}
    with ctx.database.session() as s:
        assert s.scalar(select(func.count()).select_from(Message)) == 0
    # The lease expires (the other worker died, say): the next task runs, then gives the lease back.
    clock.advance(timedelta(seconds=run_lease_seconds(get_job("ticket_alerts"))))
    assert task(a) == {"job": "ticket_alerts", "results": {str(a): {"urgent": 1, "alerts": 1, "opened": 0}},
                  "failures": {}}
    assert task(a) == {"job": "ticket_alerts", "results": {str(a): {"urgent": 0, "alerts": 0, "opened": 0}},
                  "failures": {}}
    assert [run_lease_seconds(get_job(n)) for n in ("dispatch", "sync", "metrics_snapshot")] == [300, 900, 3600]
