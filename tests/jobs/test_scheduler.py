"""Scheduler: declarative job list, lease standby/takeover, per-store isolation, APScheduler wiring, CLI."""

from __future__ import annotations

import os
import select as select_module
import signal
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from aftercare.cli import main
from jobs.runner import JobTargetError, UnknownJobError, resolve, run_job
from jobs.schedule import JOBS, JobSpec, SchedulerService, acquire_lease, get_job, job_names
from plugin.models import FlowSettings, SchedulerLease
from tests.conftest import TEST_ENCRYPTION_KEY, TEST_SECRET_KEY
from tests.jobs import factory as f
from tests.processes import AFTERCARE, like_a_terminal

TEST_JOBS = (
    JobSpec("mark", "tests.jobs.jobfns:mark_store", 60, platforms=("shopify", "amazon")),
    JobSpec("probe", "tests.jobs.jobfns:global_probe", 60, per_store=False),
)


def test_job_list_covers_every_flow_and_subsystem():
    targets = {spec.name: spec.target for spec in JOBS}
    assert targets == {
        "sync": "plugin.sync.store_run:sync_store",
        "webhooks": "jobs.webhooks:process_pending",
        "review_requests": "plugin.flows.runner:run_review_request",
        "review_replies": "plugin.flows.runner:run_review_reply",
        "surveys": "plugin.flows.runner:run_survey",
        "delivery_updates": "plugin.flows.runner:run_delivery_update",
        "first_order": "plugin.flows.runner:run_first_order",
        "cancellations": "plugin.flows.runner:run_cancellation",
        "ticket_followups": "plugin.flows.runner:run_ticket_followup",
        "usage_guides": "plugin.flows.runner:run_usage_guide",
        "replenishment_learn": "plugin.flows.replenishment_plan:learn",
        "replenishment": "plugin.flows.runner:run_replenishment",
        "ticket_alerts": "plugin.flows.runner:run_ticket_alert",
        "winback": "plugin.flows.runner:run_winback",
        "recommendations": "plugin.recommendations:rebuild",
        "vip": "plugin.flows.vip:run",
        "birthday": "plugin.flows.runner:run_birthday",
        "birthday_metafields": "plugin.flows.birthday:read_metafields",
        "shopping_calendar": "plugin.flows.runner:run_shopping_calendar",
        "delivery_stalls": "plugin.flows.delivery_stalls:run",
        "transit_estimates": "plugin.delivery_estimates:run_refresh",
        "redaction_sweep": "plugin.webhooks.compliance:sweep_redacted",
        "dispatch": "jobs.dispatch:dispatch_due",
        "amazon_solicitations": "plugin.flows.amazon_review_request:run",
        "amazon_feedback": "plugin.sync.amazon_feedback_run:run",
        "metrics_snapshot": "jobs.analytics:snapshot_metrics",
        "overview_figures": "jobs.analytics:refresh_store_figures",
        "overview_first_counts": "jobs.analytics:count_uncounted_store",
    }
    assert len(set(job_names())) == len(JOBS)
    by_name = {spec.name: spec for spec in JOBS}
    assert by_name["amazon_solicitations"].seconds == 24 * 3600 and by_name["amazon_solicitations"].platforms == (
        "amazon",)
    assert not by_name["dispatch"].per_store and not by_name["webhooks"].per_store
    assert by_name["sync"].platforms == ("shopify", "amazon")
    for spec in JOBS:  # every declared target exists (imported now, by the test, not by the scheduler)
        assert callable(resolve(spec.target)), spec.target


def test_missing_target_is_a_clear_error_at_run_time(ctx):
    spec = JobSpec("ghost", "jobs.no_such_module:run", 60)
    with pytest.raises(JobTargetError, match="jobs.no_such_module:run"):
        run_job(ctx, spec)
    with pytest.raises(JobTargetError, match="has no function 'nope'"):
        run_job(ctx, JobSpec("ghost", "plugin.flows.runner:nope", 60))
    with pytest.raises(UnknownJobError, match="review_requests, review_replies"):
        get_job("nope")


def test_one_failing_store_does_not_stop_the_others(ctx):
    with ctx.database.session() as s:
        a = f.store(s, name="A").id
        broken = f.store(s, name="Broken", platform="amazon").id
        c = f.store(s, name="C").id
        gone = f.store(s, name="Gone", status="uninstalled").id
    result = run_job(ctx, TEST_JOBS[0])
    assert result.results == {a: {"marked": 1}, c: {"marked": 1}}
    assert list(result.failures) == [broken] and "boom in store" in result.failures[broken]
    with ctx.database.session() as s:
        # each store ran in its own transaction: the failing store's write was rolled back alone
        assert sorted(s.scalars(select(FlowSettings.store_id).where(FlowSettings.flow == "probe"))) == [a, c]
    assert run_job(ctx, TEST_JOBS[0], store_id=c).results == {c: {"marked": 1}}
    assert gone
    assert run_job(ctx, TEST_JOBS[1]).results == {None: {"ran_at": ctx.clock.now().isoformat()}}


def test_lease_standby_and_takeover(ctx):
    first = SchedulerService(ctx, holder="first", jobs=TEST_JOBS)
    second = SchedulerService(ctx, holder="second", jobs=TEST_JOBS)
    assert first.lease_seconds == 60
    assert first.heartbeat() is True
    assert second.heartbeat() is False
    assert second.run_if_active("probe") is None  # standby runs nothing
    assert first.run_if_active("probe").ok
    ctx.clock.advance(seconds=40)
    assert first.heartbeat() is True  # renewed until +100 s
    ctx.clock.advance(seconds=59)
    assert second.heartbeat() is False
    ctx.clock.advance(seconds=2)  # the first stopped renewing: lease expired
    assert second.heartbeat() is True
    assert first.heartbeat() is False and first.active is False
    assert first.run_if_active("probe") is None
    assert second.run_if_active("probe").results[None]["ran_at"] == ctx.clock.now().isoformat()
    with ctx.database.session() as s:
        lease = s.get(SchedulerLease, "scheduler")
        assert (lease.holder, lease.expires_at) == ("second", ctx.clock.now() + timedelta(seconds=60))
    second.stop()  # clean shutdown hands over at once
    assert first.heartbeat() is True
    assert acquire_lease(ctx.database, "third", ctx.clock.now(), 60) is False


def test_apscheduler_jobs_are_declared_with_safe_options(ctx):
    service = SchedulerService(ctx, holder="x")
    scheduler = service.build()
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {"lease_heartbeat", *job_names()}
    for spec in JOBS:
        job = jobs[spec.name]
        assert job.trigger.interval == timedelta(seconds=spec.seconds)
        assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, 300)
        assert job.args == (spec.name,)
    assert jobs["lease_heartbeat"].trigger.interval == timedelta(seconds=20)
    assert type(scheduler).__name__ == "BlockingScheduler"


def _env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AFTERCARE_")}
    env.update(AFTERCARE_DATABASE_URL=database_url, AFTERCARE_SECRET_KEY=TEST_SECRET_KEY,
               AFTERCARE_ENCRYPTION_KEY=TEST_ENCRYPTION_KEY, AFTERCARE_CONFIG=str(Path("app.toml").resolve()))
    return env


def test_run_job_command(ctx, database_url):
    with ctx.database.session() as s:
        sid = f.store(s).id
    runner = CliRunner()
    result = runner.invoke(main, ["run-job", "nope"], env=_env(database_url))
    assert result.exit_code == 2
    assert "unknown job 'nope'; jobs are: sync, webhooks, review_requests" in result.output
    result = runner.invoke(main, ["run-job", "ticket_alerts", "--store", str(sid)], env=_env(database_url))
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"ticket_alerts store {sid}: urgent=0 alerts=0 opened=0"
    result = runner.invoke(main, ["run-job", "dispatch", "--store", "1"], env=_env(database_url))
    assert result.exit_code == 2 and "runs across all stores" in result.output


START_CEILING_SECONDS = 120


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "kill"])
def test_scheduler_command_takes_the_lease_and_releases_it_on_interrupt(ctx, database_url, stop):
    command = [*AFTERCARE, "scheduler", "--holder", "proc-1"]
    proc = subprocess.Popen(command, env=_env(database_url), stdout=subprocess.PIPE,
                            preexec_fn=like_a_terminal, stderr=subprocess.STDOUT,
                            text=True)
    try:
        seen = []
        while not any("lease acquired" in line for line in seen):
            # A ceiling, not a wait: the CLI's imports take ~4 s of CPU, 30-40 s of wall time on a loaded 2-core box.
            ready, _, _ = select_module.select([proc.stdout], [], [], START_CEILING_SECONDS)
            assert ready, f"scheduler printed nothing in {START_CEILING_SECONDS} s: {seen}"
            line = proc.stdout.readline()
            assert line, f"scheduler exited: {seen}"
            seen.append(line)
        with ctx.database.session() as s:
            assert s.get(SchedulerLease, "scheduler").holder == "proc-1"
        proc.send_signal(stop)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, proc.stdout.read()
    with ctx.database.session() as s:
        lease = s.get(SchedulerLease, "scheduler")
        # released on shutdown: expired already, well before the 60 s a renewal grants
        assert lease.holder == "proc-1" and lease.expires_at <= datetime.now(UTC)
        assert lease.expires_at < lease.acquired_at + timedelta(seconds=60)
