"""CLI commands: stores add-amazon (listed in plugin.cli)."""

from __future__ import annotations

import os
import time

import click

from plugin.commands.common import friendly_errors

REFRESH_TOKEN_VARIABLE = "AFTERCARE_AMAZON_REFRESH_TOKEN"  # noqa: S105 - the name of a variable, not a secret


def register(main: click.Group) -> None:
    """Add this module's commands to the `aftercare` group."""
    stores = main.commands.get("stores")
    if isinstance(stores, click.Group):
        stores.add_command(add_amazon)


@click.command("add-amazon")
@click.option("--seller-id", required=True, help="The selling partner id (Merchant Token), e.g. A1B2C3D4E5F6G7.")
@click.option("--region", required=True, type=click.Choice(["na", "eu", "fe"]), help="SP-API region of the account.")
@click.option("--marketplaces", required=True, help="Comma-separated country codes, e.g. US,CA or UK,DE,FR.")
@click.option("--merchant-id", type=int, default=None, help="Attach to this merchant (default: a new merchant).")
@click.option("--name", default=None, help="Display name of the store (default: Amazon <seller id> (<region>)).")
@click.option("--skip-check", is_flag=True, help="Store the credentials without calling Amazon (offline setup).")
def add_amazon(seller_id: str, region: str, marketplaces: str, merchant_id: int | None, name: str | None,
               skip_check: bool) -> None:
    """Connect an Amazon seller (refresh token from AFTERCARE_AMAZON_REFRESH_TOKEN or a hidden prompt)."""
    friendly_errors(_add_amazon)(seller_id.strip(), region, marketplaces, merchant_id, name, skip_check)


def _add_amazon(seller_id: str, region: str, marketplaces: str, merchant_id: int | None, name: str | None,
                skip_check: bool) -> None:
    from sqlalchemy import select

    from base.clock import SystemClock
    from connectors.amazon.client import Credentials, SpApiSession
    from connectors.amazon.connection import ConnectionProblem, check_connection
    from connectors.amazon.marketplaces import resolve
    from plugin.config import load_config
    from plugin.crypto import Vault
    from plugin.db import Database
    from plugin.models import Merchant, Store
    from plugin.secrets_store import set_credential

    config = load_config()
    if not config.secrets.lwa_client_id:
        raise click.ClickException("AFTERCARE_LWA_CLIENT_ID is not set (the LWA client id of your SP-API app)")
    if not config.secrets.lwa_client_secret:
        raise click.ClickException("AFTERCARE_LWA_CLIENT_SECRET is not set (the LWA client secret of your SP-API app)")
    try:
        marketplace_ids = resolve(marketplaces.split(","), region)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--marketplaces") from None
    # Never from argv: command lines end up in shell history and `ps`.
    refresh_token = os.environ.get(REFRESH_TOKEN_VARIABLE, "").strip()
    if not refresh_token:
        refresh_token = click.prompt("LWA refresh token (Atzr|...)", hide_input=True).strip()
    if not refresh_token:
        raise click.ClickException(f"no refresh token: set {REFRESH_TOKEN_VARIABLE} or type it at the prompt")
    if not skip_check:
        clock = SystemClock()
        session = SpApiSession.from_config(config, Credentials(config.secrets.lwa_client_id,
                                                               config.secrets.lwa_client_secret, refresh_token),
                                           region=region, clock=clock, sleep=time.sleep)
        try:
            with session:
                check_connection(session, marketplace_ids, clock.now())
        except ConnectionProblem as exc:
            raise click.ClickException(f"connection check failed: {exc}") from None
    database = Database(config.database_url)
    external_id = f"{seller_id}:{region}"
    try:
        with database.session() as db:
            store = db.scalar(select(Store).where(Store.platform == "amazon", Store.external_id == external_id))
            if merchant_id is not None and db.get(Merchant, merchant_id) is None:
                raise click.ClickException(f"merchant {merchant_id} does not exist")
            if store is None:
                if merchant_id is None:
                    merchant = Merchant(name=name or f"Amazon seller {seller_id}")
                    db.add(merchant)
                    db.flush()
                    merchant_id = merchant.id
                store = Store(merchant_id=merchant_id, platform="amazon", external_id=external_id, region=region)
                db.add(store)
                verb = "connected"
            else:
                verb = "reconnected"
                if merchant_id is not None:
                    store.merchant_id = merchant_id
            store.name = name or store.name or f"Amazon {seller_id} ({region})"
            store.marketplace_ids = marketplace_ids
            store.status = "active"
            store.uninstalled_at = None
            set_credential(store, Vault(config.secrets.encryption_key), "refresh_token_enc", refresh_token)
            db.flush()
            store_id = store.id
    finally:
        database.dispose()
    countries = ",".join(c.strip().upper() for c in marketplaces.split(",") if c.strip())
    checked = "" if skip_check else "; connection checked"
    click.echo(f"{verb} Amazon seller {seller_id} ({region}: {countries}) as store {store_id}{checked}")
