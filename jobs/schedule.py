"""The one declarative list of periodic jobs, the database lease, and the APScheduler entry point.

Targets are dotted paths imported when the job runs (jobs.runner.resolve), so a module that is
missing or broken fails that job with a clear error instead of stopping the scheduler at import.
Only the lease holder runs jobs: a second scheduler started by mistake stays on standby and takes
over when the holder's lease expires (APScheduler's job store cannot be shared, DESIGN.md §2).
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from jobs.runner import JobResult, UnknownJobError, run_job
from plugin.context import JobContext
from plugin.db import Database
from plugin.models import SCHEDULER_LEASE, SchedulerLease

log = logging.getLogger("aftercare.scheduler")

LEASE_NAME = SCHEDULER_LEASE
HOUR = 3600
DAY = 24 * HOUR


@dataclass(frozen=True)
class JobSpec:
    """A periodic job: its name (the APScheduler id), target ``module:function`` and interval."""

    name: str
    target: str
    seconds: int
    per_store: bool = True
    platforms: tuple[str, ...] = ("shopify",)
    description: str = ""


JOBS: tuple[JobSpec, ...] = (
    JobSpec("sync", "plugin.sync.store_run:sync_store", 15 * 60, platforms=("shopify", "amazon"),
            description="incremental sync: Shopify customers, products, orders, Judge.me reviews; Amazon orders"),
    JobSpec("webhooks", "jobs.webhooks:process_pending", 30, per_store=False,
            description="process stored webhook events"),
    JobSpec("review_requests", "plugin.flows.runner:run_review_request", HOUR,
            description="Shopify review request emails"),
    JobSpec("review_replies", "plugin.flows.runner:run_review_reply", 15 * 60,
            description="Judge.me replies: auto-reply 4-5 stars, draft + ticket for 1-3 stars"),
    JobSpec("surveys", "plugin.flows.runner:run_survey", HOUR,
            description="NPS/CSAT surveys"),
    JobSpec("delivery_updates", "plugin.flows.runner:run_delivery_update", 5 * 60,
            description="delivery-update emails for new parcel milestones (out for delivery goes out at once)"),
    JobSpec("first_order", "plugin.flows.runner:run_first_order", 15 * 60,
            description="first-order welcome emails (what happens next, contact, refund policy)"),
    JobSpec("cancellations", "plugin.flows.runner:run_cancellation", 15 * 60,
            description="why-did-you-cancel questions and declined-payment notices"),
    JobSpec("usage_guides", "plugin.flows.runner:run_usage_guide", HOUR,
            description="usage guides and care tips, N days after delivery of a product new to the customer"),
    JobSpec("ticket_followups", "plugin.flows.runner:run_ticket_followup", HOUR,
            description="complaint follow-through: what we changed (+7 d), come-back offer (+30 d)"),
    JobSpec("replenishment_learn", "plugin.flows.replenishment_plan:learn", DAY,
            description="learn each consumable product's median re-buy cycle"),
    JobSpec("replenishment", "plugin.flows.runner:run_replenishment", HOUR,
            description="cancel re-ordered reminders, plan due replenishment reminders"),
    JobSpec("winback", "plugin.flows.runner:run_winback", HOUR,
            description="win-back emails to newly dormant customers (and the paced backfill), reminders"),
    JobSpec("birthday_metafields", "plugin.flows.birthday:read_metafields", HOUR,
            description="read the merchant's birthday metafield for the next customers (rolling pass)"),
    JobSpec("birthday", "plugin.flows.runner:run_birthday", HOUR,
            description="birthday emails with a code, lead_days before, at 09:00 local"),
    JobSpec("shopping_calendar", "plugin.flows.runner:run_shopping_calendar", HOUR,
            description="shopping-calendar event emails with a code, lead_days before, at 09:00 local"),
    JobSpec("vip", "plugin.flows.vip:run", HOUR,
            description="follow the VIP segment: Shopify VIP tag added/removed, welcome email with a perk"),
    JobSpec("recommendations", "plugin.recommendations:rebuild", DAY,
            description="recompute the co-purchase recommendations marketing emails show"),
    JobSpec("ticket_alerts", "plugin.flows.runner:run_ticket_alert", 5 * 60, platforms=("shopify", "amazon"),
            description="alert the merchant at once for severity-1 tickets, and once per ticket past its SLA"),
    JobSpec("delivery_stalls", "plugin.flows.delivery_stalls:run", HOUR, platforms=("shopify", "amazon"),
            description="stalled, late and failed deliveries: tickets, \"we're on it\" notices; Amazon late shipments"),
    JobSpec("transit_estimates", "plugin.delivery_estimates:run_refresh", DAY,
            description="median and 90th-percentile transit days by destination country and carrier"),
    JobSpec("redaction_sweep", "plugin.webhooks.compliance:sweep_redacted", DAY,
            description="erase delivery details that reached redacted customers' orders after the redaction"),
    JobSpec("dispatch", "jobs.dispatch:dispatch_due", 60, per_store=False,
            description="send due outbox messages through the send policy"),
    JobSpec("amazon_solicitations", "plugin.flows.amazon_review_request:run", DAY, platforms=("amazon",),
            description="plan Amazon productReviewAndSellerFeedback solicitations (sent by dispatch)"),
    JobSpec("amazon_feedback", "plugin.sync.amazon_feedback_run:run", 12 * HOUR, platforms=("amazon",),
            description="Amazon seller-feedback reports (GET_SELLER_FEEDBACK_DATA) into the inbox"),
    JobSpec("metrics_snapshot", "jobs.analytics:snapshot_metrics", DAY, platforms=("shopify", "amazon"),
            description="recompute customer metrics (RFM, CLV) and the overview counts"),
    JobSpec("overview_figures", "jobs.analytics:refresh_store_figures", HOUR, platforms=("shopify", "amazon"),
            description="recount the overview's repurchase rate, cohorts, monthly orders and flow outcomes"),
    # The admin never counts a store in a request; a store without current counts shows "counting…" until this.
    JobSpec("overview_first_counts", "jobs.analytics:count_uncounted_store", 5 * 60, platforms=("shopify", "amazon"),
            description="count the overview of a store that has no current counts yet (just installed)"),
)


def job_names(jobs: tuple[JobSpec, ...] = JOBS) -> list[str]:
    """Return the declared job names in order."""
    return [spec.name for spec in jobs]


def get_job(name: str, jobs: tuple[JobSpec, ...] = JOBS) -> JobSpec:
    """Return the spec named ``name`` or raise UnknownJobError listing the valid names."""
    for spec in jobs:
        if spec.name == name:
            return spec
    raise UnknownJobError(f"unknown job {name!r}; jobs are: {', '.join(job_names(jobs))}")


def run_named(ctx: JobContext, name: str, store_id: int | None = None) -> JobResult:
    """Run one declared job once (the `aftercare run-job` command and Celery tasks)."""
    return run_job(ctx, get_job(name), store_id)


# -- lease --------------------------------------------------------------------------------------


def acquire_lease(database: Database, holder: str, now: datetime, seconds: int, name: str = LEASE_NAME) -> bool:
    """Take or renew the lease atomically; return whether ``holder`` holds it until now + seconds."""
    expires = now + timedelta(seconds=seconds)
    with database.session() as session:
        # One statement decides: it matches only an expired lease or our own, so two contenders
        # can never both win (the row lock / SQLite's write lock serialises them).
        renewed = session.execute(
            update(SchedulerLease)
            .where(SchedulerLease.name == name, or_(SchedulerLease.expires_at <= now, SchedulerLease.holder == holder))
            .values(holder=holder, acquired_at=now, expires_at=expires)
            .execution_options(synchronize_session=False))
        if renewed.rowcount == 1:
            return True
        dialect = session.get_bind().dialect.name
        ins = pg_insert if dialect == "postgresql" else sqlite_insert if dialect == "sqlite" else None
        stmt: Any = (ins(SchedulerLease) if ins else insert(SchedulerLease)).values(
            name=name, holder=holder, acquired_at=now, expires_at=expires)
        if ins:
            stmt = stmt.on_conflict_do_nothing(index_elements=["name"])
        # RETURNING, not rowcount: drivers report rowcount for INSERT ... ON CONFLICT inconsistently.
        return session.execute(stmt.returning(SchedulerLease.name)).scalar_one_or_none() is not None


def release_lease(database: Database, holder: str, now: datetime, name: str = LEASE_NAME) -> None:
    """Give the lease up at once (clean shutdown) so a standby can take over without waiting."""
    with database.session() as session:
        session.execute(update(SchedulerLease).where(SchedulerLease.name == name, SchedulerLease.holder == holder)
                        .values(expires_at=now).execution_options(synchronize_session=False))


def default_holder() -> str:
    """Name this process uniquely: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class SchedulerService:
    """The scheduler process: renews the lease on a timer and runs the declared jobs while it holds it."""

    def __init__(self, ctx: JobContext, holder: str | None = None, jobs: tuple[JobSpec, ...] = JOBS,
                 submit: Callable[[JobSpec], Any] | None = None):
        self.ctx = ctx
        # How a due job runs: in this process by default, or handed to Celery (jobs.celery_app.submitter).
        self.submit = submit or (lambda spec: run_job(ctx, spec))
        self.holder = holder or default_holder()
        self.jobs = jobs
        self.lease_seconds = ctx.config.get("scheduler.lease_seconds")
        self.misfire_grace = ctx.config.get("scheduler.misfire_grace_seconds")
        self.active = False

    def heartbeat(self) -> bool:
        """Acquire or renew the lease; log transitions between active and standby; return active."""
        now = self.ctx.clock.now()
        held = acquire_lease(self.ctx.database, self.holder, now, self.lease_seconds)
        was_active, self.active = self.active, held
        if held and not was_active:
            log.info("scheduler active: lease acquired", extra={"holder": self.holder})
        elif not held and was_active:
            log.warning("scheduler lost the lease; standing by", extra={"holder": self.holder})
        elif not held:
            log.info("another scheduler holds the lease; standing by", extra={"holder": self.holder})
        return held

    def run_if_active(self, name: str) -> Any:
        """Run (or submit) a job when this process holds the lease; on standby do nothing."""
        if not self.active:
            return None
        return self.submit(get_job(name, self.jobs))

    def stop(self) -> None:
        """Release the lease on shutdown (a no-op unless this process holds it)."""
        self.active = False
        release_lease(self.ctx.database, self.holder, self.ctx.clock.now())

    def build(self, scheduler_cls: type | None = None) -> Any:
        """Return an APScheduler 3 scheduler (BlockingScheduler by default) with every job added."""
        from apscheduler.schedulers.blocking import BlockingScheduler

        scheduler = (scheduler_cls or BlockingScheduler)(timezone=self.ctx.config.get("scheduler.timezone"))
        common = dict(replace_existing=True, coalesce=True, max_instances=1, misfire_grace_time=self.misfire_grace)
        # Renew at a third of the lease so a slow database round trip never lets it lapse.
        scheduler.add_job(self.heartbeat, "interval", seconds=max(1, self.lease_seconds // 3),
                          id="lease_heartbeat", name="lease_heartbeat", **common)
        for spec in self.jobs:
            scheduler.add_job(self.run_if_active, "interval", seconds=spec.seconds, args=[spec.name],
                              id=spec.name, name=spec.name, **common)
        return scheduler

    def serve_forever(self) -> None:
        """Block running the scheduler until interrupted (the `aftercare scheduler` command)."""
        scheduler = self.build()
        try:
            # Inside the try: an interrupt right after the first acquisition still releases the lease.
            self.heartbeat()
            scheduler.start()
        except (KeyboardInterrupt, SystemExit):
            log.info("scheduler stopping")
        finally:
            self.stop()

