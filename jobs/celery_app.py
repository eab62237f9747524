"""Optional Celery entry: the declared jobs as Celery tasks, for when one machine is not enough.

The scheduler (`aftercare scheduler` with ``scheduler.engine = "celery"``) stays the single place that
decides *when*; it fans a job out into one task per store and Celery workers run the very same job
functions (jobs.runner) with a broker from ``scheduler.celery_broker_url`` (Redis or RabbitMQ).
Workers: ``celery -A jobs.celery_app worker`` (reads the configuration from the environment).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import Celery

from jobs.runner import run_job, store_ids
from jobs.schedule import JOBS, JobSpec, acquire_lease, default_holder, get_job, release_lease
from plugin.config import Config, ConfigError, load_config
from plugin.context import JobContext

TASK_PREFIX = "aftercare."


def task_name(job: str) -> str:
    """Return the Celery task name of a declared job."""
    return TASK_PREFIX + job


def make_celery(config: Config, ctx_factory: Callable[[], JobContext] | None = None) -> Celery:
    """Build a Celery app with one task per declared job; workers build their JobContext on first use."""
    broker = config.get("scheduler.celery_broker_url")
    if not broker:
        raise ConfigError("scheduler.celery_broker_url is not set (e.g. redis://127.0.0.1:6379/0 or "
                          "amqp://guest@127.0.0.1//); set AFTERCARE_SCHEDULER__CELERY_BROKER_URL")
    backend = broker if broker.startswith(("redis://", "rediss://")) else "rpc://"
    app = Celery("aftercare", broker=broker, backend=backend)
    app.conf.update(task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=1,
                    task_serializer="json", result_serializer="json", accept_content=["json"],
                    broker_connection_timeout=10, result_expires=3600, timezone="UTC")
    holder: dict[str, JobContext] = {}

    def context() -> JobContext:
        if "ctx" not in holder:
            holder["ctx"] = ctx_factory() if ctx_factory else JobContext.from_config(config)
        return holder["ctx"]

    for spec in JOBS:
        # Not shared: a shared task is copied into every Celery app made later in the process, so a second
        # app (tests, or a re-configured worker) would run the first app's context.
        app.task(name=task_name(spec.name), acks_late=True, shared=False)(_task_body(spec.name, context))
    return app


def run_lease_seconds(spec: JobSpec) -> int:
    """Return how long a task holds its run lease: its interval, between 5 minutes and an hour.

    A worker that dies mid-run keeps the lease until it expires: short enough that dispatch resumes within
    minutes, long enough that an hourly sync is not started twice. A run longer than its lease may overlap
    the next one, which the outbox's idempotency keys and the idempotent upserts make harmless.
    """
    return max(300, min(int(spec.seconds), 3600))


def _task_body(name: str, context: Callable[[], JobContext]) -> Callable[..., dict[str, Any]]:
    def body(store_id: int | None = None) -> dict[str, Any]:
        ctx = context()
        spec = get_job(name)
        # Celery may hand a slow store's next run to another worker (or redeliver a task after a lost
        # worker): one run per job and store at a time, decided by a lease row in the database.
        lease = f"run:{name}:{'all' if store_id is None else store_id}"
        holder = default_holder()
        if not acquire_lease(ctx.database, holder, ctx.clock.now(), run_lease_seconds(spec), name=lease):
            return {"job": name, "results": {}, "failures": {}, "skipped": "already running"}
        try:
            result = run_job(ctx, spec, store_id)
        finally:
            release_lease(ctx.database, holder, ctx.clock.now(), name=lease)
        # JSON keys must be strings; None is the one run of a global job.
        return {"job": result.job, "results": {str(k): v for k, v in result.results.items()},
                "failures": {str(k): v for k, v in result.failures.items()}}

    body.__name__ = f"run_{name}"
    body.__doc__ = f"Run the declared job {name!r} (one store, or all when store_id is None)."
    return body


def submitter(app: Celery, ctx: JobContext) -> Callable[[JobSpec], list[Any]]:
    """Return the scheduler's submit function: one Celery task per store (or one for a global job)."""

    def submit(spec: JobSpec) -> list[Any]:
        if not spec.per_store:
            return [app.send_task(task_name(spec.name))]
        return [app.send_task(task_name(spec.name), args=[sid]) for sid in store_ids(ctx, spec.platforms)]

    return submit


def _default_app() -> Celery | None:
    """The app `celery -A jobs.celery_app worker` finds, when the environment configures a broker."""
    try:
        config = load_config()
    except ConfigError:
        return None
    return make_celery(config) if config.get("scheduler.celery_broker_url") else None


app = _default_app()
