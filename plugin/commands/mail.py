"""CLI commands: unsubscribe-mailbox (listed in plugin.cli)."""

from __future__ import annotations

import signal
import threading

import click

from plugin.commands.common import friendly_errors


def register(main: click.Group) -> None:
    """Add this module's commands to the `aftercare` group."""
    main.add_command(unsubscribe_mailbox)


@click.command("unsubscribe-mailbox")
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")  # noqa: S104
@click.option("--port", default=2525, show_default=True, type=int, help="SMTP port to listen on.")
def unsubscribe_mailbox(host: str, port: int) -> None:
    """Receive mailto: unsubscribes and bounce reports (mail.unsubscribe_mailto, mail.bounce_mailbox)."""
    from base.clock import SystemClock
    from plugin.config import ConfigError, load_config
    from plugin.db import Database
    from plugin.logs import configure_logging
    from plugin.messaging.inbound import MailboxServer, UnsubscribeHandler

    @friendly_errors
    def _run() -> None:
        cfg = load_config()
        mailbox = cfg.get("mail.unsubscribe_mailto")
        bounce_mailbox = cfg.get("mail.bounce_mailbox")
        if "@" not in mailbox and "@" not in bounce_mailbox:
            raise ConfigError("mail.unsubscribe_mailto (AFTERCARE_MAIL__UNSUBSCRIBE_MAILTO) must be the mailbox "
                              "address this server receives, e.g. \"unsubscribe@mail.example.com\" (or set "
                              "mail.bounce_mailbox, AFTERCARE_MAIL__BOUNCE_MAILBOX, for bounce reports)")
        if bounce_mailbox and "@" not in bounce_mailbox:
            raise ConfigError("mail.bounce_mailbox (AFTERCARE_MAIL__BOUNCE_MAILBOX) must be an address like "
                              "\"bounces@mail.example.com\"")
        configure_logging(cfg.get("app.log_level"), cfg.secrets.values(),
                          as_json=cfg.get("app.log_format") == "json")
        database = Database(cfg.database_url)
        handler = UnsubscribeHandler(database, cfg.secrets.secret_key, SystemClock(), mailbox, bounce_mailbox)
        server = MailboxServer(handler, host=host, port=port)
        stop = threading.Event()
        # `kill` / systemd / docker stop (SIGTERM) stops as cleanly as Ctrl-C.
        signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
        server.start()
        served = " and ".join(name for name in (mailbox, bounce_mailbox and f"bounces to {bounce_mailbox}") if name)
        click.echo(f"unsubscribe mailbox {served}: SMTP on {host}:{server.port} (Ctrl+C to stop)")
        try:
            while not stop.wait(1.0):  # a timed wait lets Ctrl-C's KeyboardInterrupt through
                pass
        except KeyboardInterrupt:
            pass
        finally:
            click.echo("stopping")
            server.stop()
            database.dispose()

    _run()
