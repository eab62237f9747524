"""Embedded install through token exchange, end to end against the Shopify sandbox over real HTTP."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta
from pathlib import Path

import jwt
import requests
from graphql import build_client_schema, parse, validate
from sqlalchemy import func, select

from base.clock import FrozenClock
from plugin.auth.install import SHOP_QUERY
from plugin.models import Merchant, Store
from plugin.secrets_store import get_credential
from tests.conftest import TEST_SHOPIFY_API_KEY
from tests.paths import SHOPIFY_SCHEMA
from tests.shopify_app_env import SCOPES, TIMEOUT, ShopifyEnv, shopify_env


def _store(env: ShopifyEnv) -> Store | None:
    with env.app.extensions["aftercare.db"].session() as session:
        return session.scalar(select(Store).where(Store.external_id == env.shop))


def _exchange(env: ShopifyEnv, token: str) -> requests.Response:
    return requests.post(f"{env.url}/auth/token-exchange", headers={"Authorization": f"Bearer {token}"},
                         timeout=TIMEOUT)


def test_first_admin_load_installs_the_store(database_url: str, tmp_path: Path, clock: FrozenClock) -> None:
    with shopify_env(database_url, tmp_path, clock) as env:
        env.sandbox.store.shop.primary_locale = "de"
        answer = _exchange(env, env.session_token())
        assert answer.status_code == 200
        store = _store(env)
        assert answer.json() == {"shop": env.shop, "store_id": store.id, "status": "active"}
        shop = env.sandbox.store.shop
        assert (store.platform, store.name, store.currency, store.timezone, store.country) == (
            "shopify", shop.name, shop.currency, shop.iana_timezone, shop.country)
        assert store.primary_locale == "de"
        assert store.status == "active" and store.installed_at == clock.now() and store.uninstalled_at is None
        assert store.reinstalled_at is None  # the shop's first install: no cutoff on its backfilled orders
        assert store.scopes == ",".join(SCOPES)
        assert store.access_token_expires_at == clock.now() + timedelta(seconds=3600)
        assert store.refresh_token_expires_at == clock.now() + timedelta(days=90)

        vault = env.app.extensions["aftercare.vault"]
        access = get_credential(store, vault, "access_token_enc")
        refresh = get_credential(store, vault, "refresh_token_enc")
        assert access.startswith("shpat_") and refresh.startswith("shprt_")
        assert access.encode() not in store.access_token_enc and refresh.encode() not in store.refresh_token_enc
        issued = env.sandbox.tokens.lookup(access, clock.now())
        assert issued is not None and (issued.shop, issued.client_id, issued.mode) == (
            env.shop, TEST_SHOPIFY_API_KEY, "offline")
        with env.app.extensions["aftercare.db"].session() as session:
            merchant = session.get(Merchant, store.merchant_id)
            assert merchant.name == shop.name


def test_later_loads_reuse_the_stored_token(database_url: str, tmp_path: Path, clock: FrozenClock) -> None:
    with shopify_env(database_url, tmp_path, clock) as env:
        env.install()
        first = _store(env).access_token_enc
        clock.advance(minutes=10)
        assert _exchange(env, env.session_token()).status_code == 200
        assert _store(env).access_token_enc == first
        with env.app.extensions["aftercare.db"].session() as session:
            assert session.scalar(select(func.count()).select_from(Store)) == 1


def test_bad_session_tokens_are_refused(database_url: str, tmp_path: Path, clock: FrozenClock) -> None:
    with shopify_env(database_url, tmp_path, clock) as env:
        forged = jwt.encode({"iss": f"https://{env.shop}/admin", "dest": f"https://{env.shop}",
                             "aud": TEST_SHOPIFY_API_KEY, "sub": "1", "exp": int(clock.now().timestamp()) + 60,
                             "nbf": int(clock.now().timestamp())}, "another-secret-of-32-bytes-long!!",
                            algorithm="HS256")
        stale = env.session_token()
        clock.advance(minutes=5)
        for token in (forged, stale, ""):
            answer = _exchange(env, token)
            assert answer.status_code == 401, token
        assert _store(env) is None


def test_reinstall_after_uninstall(database_url: str, tmp_path: Path, clock: FrozenClock) -> None:
    with shopify_env(database_url, tmp_path, clock) as env:
        store_id = env.install()
        env.sandbox.revoke(TEST_SHOPIFY_API_KEY)
        assert _store(env).status == "uninstalled"
        back_at = clock.advance(days=2)
        assert env.install() == store_id
        store = _store(env)
        assert (store.status, store.installed_at, store.uninstalled_at, store.reinstalled_at) == (
            "active", back_at, None, back_at)
        access = get_credential(store, env.app.extensions["aftercare.vault"], "access_token_enc")
        assert env.sandbox.tokens.lookup(access, clock.now()) is not None


def test_shop_details_query_is_valid_against_the_official_schema() -> None:
    with gzip.open(SHOPIFY_SCHEMA) as fh:
        schema = build_client_schema(json.load(fh)["data"])
    schema._validation_errors = []  # Shopify's deprecated interface implementations (see the specs README)
    assert [e.message for e in validate(schema, parse(SHOP_QUERY))] == []
