"""A store's marketplace connection: the Shopify GraphQL client and the Amazon SP-API session of one store."""

from __future__ import annotations

import random

from sqlalchemy.orm import Session

from connectors.amazon.client import Credentials, SpApiSession
from connectors.shopify.client import ShopifyClient
from plugin.auth.tokens import get_access_token
from plugin.config import ConfigError
from plugin.context import JobContext
from plugin.models import Store
from plugin.secrets_store import get_credential
from plugin.sp_api_state import DatabaseBuckets, StoredAccessTokens


def shopify_client(ctx: JobContext, store_id: int) -> ShopifyClient:
    """Build the GraphQL client of a Shopify store (refreshing its expiring token first when needed)."""
    with ctx.database.session() as session:
        store = session.get(Store, store_id)
        if store is None:
            raise LookupError(f"store {store_id} does not exist")
        token = get_access_token(session, store, ctx)
        shop = store.external_id
    client = ShopifyClient.from_config(ctx.config, shop, token, clock=ctx.clock, sleep=ctx.sleep,
                                       rng=random.Random(ctx.extras.get("seed", store_id)),  # noqa: S311
                                       session=ctx.extras.get("http_session"))
    ctx.meter.track("shopify", client.stats)
    return client


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
    """Build this run's SP-API session for a seller (one per job run: the library clients keep state).

    The seller's token buckets and access token live in the database (plugin/sp_api_state.py), so the session
    continues where the seller's last run or another worker left them.
    """
    client_id, client_secret = lwa_app(ctx)
    refresh_token = get_credential(store, ctx.vault, "refresh_token_enc")
    if not refresh_token:
        raise ConfigError(f"store {store.id} has no LWA refresh token; run `aftercare stores add-amazon` again")
    api = SpApiSession.from_config(ctx.config, Credentials(client_id, client_secret, refresh_token),
                                   region=store.region or "na", clock=ctx.clock, sleep=ctx.sleep,
                                   buckets=DatabaseBuckets(ctx.database, store.id, ctx.clock),
                                   shared_tokens=StoredAccessTokens(ctx.database, ctx.vault, store.id))
    ctx.meter.track("amazon", api.stats)
    return api
