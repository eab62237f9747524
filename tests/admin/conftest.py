"""Fixtures of the admin tests: two seeded merchants and session tokens for their shops."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sandbox.shopify import mint_session_token
from tests.admin.seed import SHOP_A, SHOP_B, Tenant, seed_tenant
from tests.conftest import TEST_SHOPIFY_API_KEY, TEST_SHOPIFY_API_SECRET


@pytest.fixture
def tenants(app, clock) -> tuple[Tenant, Tenant]:
    """Seed merchant A (Shopify + Amazon) and merchant B (Shopify), committed."""
    database = app.extensions["aftercare.db"]
    vault = app.extensions["aftercare.vault"]
    with database.session() as session:
        a = seed_tenant(session, vault, clock.now(), SHOP_A, with_amazon=True)
        b = seed_tenant(session, vault, clock.now(), SHOP_B)
    return a, b


@pytest.fixture
def token(clock):
    """Return a function minting a session token for a shop at the test clock's time."""

    def mint(shop: str = SHOP_A, ttl: timedelta = timedelta(minutes=1), **kwargs) -> str:
        return mint_session_token(shop, kwargs.pop("client_id", TEST_SHOPIFY_API_KEY),
                                  kwargs.pop("secret", TEST_SHOPIFY_API_SECRET), clock.now(), ttl=ttl, **kwargs)

    return mint
