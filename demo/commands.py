"""CLI command: demo (registered on the `aftercare` group by aftercare.cli)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import click


@click.command("demo")
@click.option("--fresh", is_flag=True, help="Start over: delete the demo database, journal and outbox.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port of the admin (0: a free port).")
@click.option("--customers", default=200, show_default=True, type=int, help="Customers of the Shopify store.")
@click.option("--orders", default=800, show_default=True, type=int, help="Orders of the Shopify store (2 years).")
@click.option("--amazon-orders", default=200, show_default=True, type=int, help="Orders of the Amazon seller.")
@click.option("--days", default=90, show_default=True, type=click.IntRange(7, 365),
              help="Days simulated on the accelerated clock.")
@click.option("--instance", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Instance folder (default: ./instance).")
@click.option("--no-serve", is_flag=True, help="Stop after the simulation instead of serving the admin.")
def demo(fresh: bool, port: int, customers: int, orders: int, amazon_orders: int, days: int,
         instance: Path | None, no_serve: bool) -> None:
    """Run the whole product locally: sandboxes, install, backfill, 90 simulated days, then the admin."""
    from demo import Demo, DemoError, DemoOptions
    from plugin.config import default_instance_path

    options = DemoOptions(instance=instance or default_instance_path(), port=port, customers=customers,
                          orders=orders, amazon_orders=amazon_orders, days=days, fresh=fresh,
                          echo=lambda line: click.echo(line))
    runner = Demo(options)
    stop = threading.Event()
    # `kill` (SIGTERM) stops as cleanly as Ctrl-C.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    try:
        result = runner.start()
        click.echo(f"[6/6] Ready in {result.seconds:.0f} s" + (" (data reused)" if result.reused else ""))
        if no_serve:
            return
        runner.start_scheduler()
        click.echo("")
        click.echo(f"  Embedded admin (inside the sandbox's Shopify admin): {result.embedded_url}")
        click.echo(f"  Standalone admin: {result.login_url}")
        click.echo(f"      email {result.login_email}   password {result.login_password}")
        click.echo(f"  Emails sent (demo outbox): {result.outbox_url}")
        click.echo("")
        click.echo("Press Ctrl-C to stop.")
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        click.echo("\nStopping the demo...")
    except DemoError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        # A second Ctrl-C while the threads shut down would abort halfway; stopping takes a moment only.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        runner.stop()


def register(main: click.Group) -> None:
    """Add this module's commands to the `aftercare` group."""
    main.add_command(demo)
