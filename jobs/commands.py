"""CLI commands that run jobs: scheduler, run-job, sync (registered on the `aftercare` group by aftercare.cli)."""

from __future__ import annotations

import signal
import sys

import click

from plugin.commands.common import friendly_errors


def register(main: click.Group) -> None:
    """Add this module's commands to the `aftercare` group."""
    main.add_command(scheduler)
    main.add_command(run_job)
    main.add_command(sync)
    main.add_command(check)


@click.command("scheduler")
@click.option("--holder", default=None, help="Name of this scheduler in the lease (default: host:pid:random).")
def scheduler(holder: str | None) -> None:
    """Run the periodic jobs (one active scheduler; others wait on standby)."""
    from jobs.schedule import SchedulerService
    from plugin.config import load_config
    from plugin.context import JobContext
    from plugin.logs import configure_logging

    @friendly_errors
    def _run() -> None:
        cfg = load_config()
        configure_logging(cfg.get("app.log_level"), cfg.secrets.values(),
                          as_json=cfg.get("app.log_format") == "json")
        ctx = JobContext.from_config(cfg)
        submit = None
        if cfg.get("scheduler.engine") == "celery":
            from jobs.celery_app import make_celery, submitter

            submit = submitter(make_celery(cfg), ctx)
        service = SchedulerService(ctx, holder=holder, submit=submit)
        # `kill` / systemd / docker stop (SIGTERM) stops as cleanly as Ctrl-C: the lease is released at once.
        signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(0))
        click.echo(f"scheduler {service.holder}: {len(service.jobs)} jobs, engine "
                   f"{cfg.get('scheduler.engine')}, lease {service.lease_seconds}s (Ctrl+C to stop)")
        service.serve_forever()

    _run()


@click.command("run-job")
@click.argument("name")
@click.option("--store", "store_id", type=int, default=None, help="Run for this store id only.")
def run_job(name: str, store_id: int | None) -> None:
    """Run one declared job once, now (all stores, or --store ID)."""
    from jobs.runner import JobTargetError, UnknownJobError
    from jobs.schedule import get_job, run_named
    from plugin.config import load_config
    from plugin.context import JobContext

    @friendly_errors
    def _run() -> None:
        try:
            spec = get_job(name)
        except UnknownJobError as exc:
            raise click.UsageError(str(exc)) from None
        if store_id is not None and not spec.per_store:
            raise click.UsageError(f"job {name!r} runs across all stores; --store does not apply")
        ctx = JobContext.from_config(load_config())
        try:
            result = run_named(ctx, name, store_id)
        except JobTargetError as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            ctx.database.dispose()
        for sid, counts in result.results.items():
            where = "all stores" if sid is None else f"store {sid}"
            shown = " ".join(f"{k}={v}" for k, v in counts.items()) or "nothing to do"
            click.echo(f"{name} {where}: {shown}")
        for sid, error in result.failures.items():
            click.echo(f"{name} store {sid}: FAILED {error}", err=True)
        if not result.results and not result.failures:
            click.echo(f"{name}: no matching stores")
        if result.failures:
            raise SystemExit(1)

    _run()


@click.command("sync")
@click.option("--store", "store_id", type=int, default=None, help="Sync this store id only (default: all active).")
@click.option("--full", is_flag=True, help="Backfill everything again (Shopify: bulk operations).")
def sync(store_id: int | None, full: bool) -> None:
    """Sync customers, products, orders and reviews from the marketplaces now."""
    from jobs.runner import run_job
    from jobs.schedule import JobSpec
    from plugin.config import load_config
    from plugin.context import JobContext

    @friendly_errors
    def _run() -> None:
        ctx = JobContext.from_config(load_config())
        # Both platforms: sync_store hands Amazon stores to the Amazon sync.
        target = "plugin.sync.store_run:sync_store_full" if full else "plugin.sync.store_run:sync_store"
        spec = JobSpec("sync", target, 0, platforms=("shopify", "amazon"))
        try:
            result = run_job(ctx, spec, store_id)
        finally:
            ctx.database.dispose()
        for sid, counts in result.results.items():
            click.echo(f"sync store {sid}: {_flat(counts)}")
        for sid, error in result.failures.items():
            click.echo(f"sync store {sid}: FAILED {error}", err=True)
        if not result.results and not result.failures:
            click.echo("sync: no active stores")
        if result.failures:
            raise SystemExit(1)

    _run()


def _flat(counts: dict, prefix: str = "") -> str:
    """Render nested counts as ``orders.records=10 orders.written=3 ...``."""
    parts = []
    for key, value in counts.items():
        if isinstance(value, dict):
            parts.append(_flat(value, f"{prefix}{key}."))
        else:
            parts.append(f"{prefix}{key}={value}")
    return " ".join(p for p in parts if p)


@click.command("check")
def check() -> None:
    """Check what a production start needs: secrets, database, SMTP, store credentials, scheduler lease."""
    import os

    from base.clock import SystemClock
    from jobs.check import main as run_checks

    raise SystemExit(run_checks(os.environ, SystemClock(), click.echo))
