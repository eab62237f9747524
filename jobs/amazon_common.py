"""What every Amazon job needs: the seller's store row and an SP-API session built from it."""

from __future__ import annotations

from sqlalchemy.orm import Session

from connectors.amazon.client import Credentials, SpApiSession
from plugin.config import ConfigError
from plugin.context import JobContext
from plugin.models import Store
from plugin.secrets_store import get_credential


def lwa_app(ctx: JobContext) -> tuple[str, str]:
    """Return the LWA app id and secret, or raise ConfigError naming the missing variable."""
    secrets = ctx.config.secrets
    if not secrets.lwa_client_id:
        raise ConfigError("AFTERCARE_LWA_CLIENT_ID is not set (required for Amazon sellers)")
    if not secrets.lwa_client_secret:
        raise ConfigError("AFTERCARE_LWA_CLIENT_SECRET is not set (required for Amazon sellers)")
    return secrets.lwa_client_id, secrets.lwa_client_secret


def amazon_store(session: Session, store_id: int) -> Store:
    """Return the Amazon store row, or raise LookupError."""
    store = session.get(Store, store_id)
    if store is None or store.platform != "amazon":
        raise LookupError(f"store {store_id} is not an Amazon seller")
    return store


def open_session(ctx: JobContext, store: Store) -> SpApiSession:
    """Build this run's SP-API session for a seller (one per job run: the library clients keep state)."""
    client_id, client_secret = lwa_app(ctx)
    refresh_token = get_credential(store, ctx.vault, "refresh_token_enc")
    if not refresh_token:
        raise ConfigError(f"store {store.id} has no LWA refresh token; run `aftercare stores add-amazon` again")
    return SpApiSession.from_config(ctx.config, Credentials(client_id, client_secret, refresh_token),
                                    region=store.region or "na", clock=ctx.clock, sleep=ctx.sleep)
