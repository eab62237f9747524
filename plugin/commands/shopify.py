"""CLI commands: shopify (registered on the `aftercare` group by plugin.cli)."""

from __future__ import annotations

import click


def register(main: click.Group) -> None:
    """Add this module's commands to the `aftercare` group."""
    main.add_command(shopify_toml)
    main.add_command(sync)


@click.command("shopify-toml")
def shopify_toml() -> None:
    """Print Shopify CLI's shopify.app.toml generated from app.toml."""
    from plugin.cli import _config, friendly_errors
    from plugin.shopify_cli_config import render_shopify_app_toml

    click.echo(friendly_errors(lambda: render_shopify_app_toml(_config()))(), nl=False)


@click.command("sync")
@click.option("--store", "store_id", type=int, default=None, help="Sync this store id only (default: all active).")
@click.option("--full", is_flag=True, help="Backfill everything again (Shopify: bulk operations).")
def sync(store_id: int | None, full: bool) -> None:
    """Sync customers, products, orders and reviews from the marketplaces now."""
    from jobs.runner import run_job
    from jobs.schedule import JobSpec
    from plugin.cli import friendly_errors
    from plugin.config import load_config
    from plugin.context import JobContext

    @friendly_errors
    def _run() -> None:
        ctx = JobContext.from_config(load_config())
        # Both platforms: sync_store hands Amazon stores to the Amazon sync.
        target = "plugin.sync.store_run:sync_store_full" if full else "plugin.sync.store_run:sync_store"
        spec = JobSpec("sync", target, 0,
                       platforms=("shopify", "amazon"))
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
