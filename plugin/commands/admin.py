"""CLI commands: `aftercare admin create-user` (standalone admin sign-in; listed in plugin.cli)."""

from __future__ import annotations

import os

import click

from plugin.commands.common import friendly_errors

PASSWORD_VARIABLE = "AFTERCARE_ADMIN_PASSWORD"  # noqa: S105 - the name of a variable, not a secret


def register(main: click.Group) -> None:
    """Add the `admin` group to the `aftercare` group."""
    main.add_command(admin)


@click.group()
def admin() -> None:
    """Manage standalone admin users (Amazon-only sellers, self-hosters)."""


@admin.command("create-user")
@click.option("--email", required=True, help="Sign-in email of the new user.")
@click.option("--merchant-id", type=int, default=None,
              help="Give access to this merchant's stores (default: a new merchant, e.g. for Amazon-only sellers).")
@click.option("--merchant-name", default=None, help="Name of the new merchant (when --merchant-id is not given).")
def create_user(email: str, merchant_id: int | None, merchant_name: str | None) -> None:
    """Create a user; the password comes from AFTERCARE_ADMIN_PASSWORD or a hidden prompt, never argv."""
    friendly_errors(_create_user)(email, merchant_id, merchant_name)


def _create_user(email: str, merchant_id: int | None, merchant_name: str | None) -> None:
    from plugin.admin.standalone import create_admin_user
    from plugin.config import load_config
    from plugin.db import Database

    password = os.environ.get(PASSWORD_VARIABLE, "")
    if not password:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    config = load_config()
    database = Database(config.database_url)
    try:
        with database.session() as session:
            try:
                user = create_admin_user(session, email, password, merchant_id=merchant_id,
                                         merchant_name=merchant_name)
            except ValueError as exc:
                raise click.ClickException(str(exc)) from None
            user_id, merchant = user.id, user.merchant_id
    finally:
        database.dispose()
    click.echo(f"created admin user {email.strip().lower()} (id {user_id}) for merchant {merchant}; "
               "sign in at /admin/login")
