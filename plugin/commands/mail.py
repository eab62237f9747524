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
    """Receive mailto: unsubscribes for mail.unsubscribe_mailto and honour each one as it arrives."""
    from base.clock import SystemClock
    from plugin.config import ConfigError, load_config
    from plugin.db import Database
    from plugin.logs import configure_logging
    from plugin.messaging.inbound import MailboxServer, UnsubscribeHandler

    @friendly_errors
    def _run() -> None:
        cfg = load_config()
        mailbox = cfg.get("mail.unsubscribe_mailto")
        if "@" not in mailbox:
            raise ConfigError("mail.unsubscribe_mailto (AFTERCARE_MAIL__UNSUBSCRIBE_MAILTO) must be the mailbox "
                              "address this server receives, e.g. \"unsubscribe@mail.example.com\"")
        configure_logging(cfg.get("app.log_level"), cfg.secrets.values(),
                          as_json=cfg.get("app.log_format") == "json")
        database = Database(cfg.database_url)
        server = MailboxServer(UnsubscribeHandler(database, cfg.secrets.secret_key, SystemClock(), mailbox),
                               host=host, port=port)
        stop = threading.Event()
        # `kill` / systemd / docker stop (SIGTERM) stops as cleanly as Ctrl-C.
        signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
        server.start()
        click.echo(f"unsubscribe mailbox {mailbox}: SMTP on {host}:{server.port} (Ctrl+C to stop)")
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
