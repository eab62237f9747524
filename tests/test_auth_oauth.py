"""The authorization-code grant (non-embedded installs) against the sandbox's grant screen and token endpoint."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import requests
from sqlalchemy import select

from base.clock import FrozenClock
from plugin.models import Store
from sandbox.shopify.oauth import query_hmac
from tests.conftest import TEST_SHOPIFY_API_KEY, TEST_SHOPIFY_API_SECRET
from tests.shopify_app_env import SCOPES, TIMEOUT, ShopifyEnv, shopify_env

PUBLIC_URL = "https://aftercare.example.com"
SETTINGS = {"app": {"development": True}, "shopify": {"application_url": PUBLIC_URL}}


def _start_install(env: ShopifyEnv, browser: requests.Session) -> str:
    """Follow the merchant from /auth/install through the grant screen; return our callback URL."""
    answer = browser.get(f"{env.url}/auth/install", params={"shop": "aftercare-demo"}, allow_redirects=False,
                         timeout=TIMEOUT)
    assert answer.status_code == 302
    grant_screen = urlsplit(answer.headers["Location"])
    assert (grant_screen.scheme, grant_screen.netloc, grant_screen.path) == (
        "https", env.shop, "/admin/oauth/authorize")
    query = parse_qs(grant_screen.query)
    assert query["client_id"] == [TEST_SHOPIFY_API_KEY]
    assert query["scope"] == [",".join(SCOPES)]
    assert query["redirect_uri"] == [PUBLIC_URL + "/auth/callback"]
    assert len(query["state"][0]) >= 24
    assert "grant_options[]" not in query  # offline token: no per-user grant
    # The merchant approves on Shopify, which redirects back to our callback.
    approved = requests.get(f"{env.sandbox.url}/admin/oauth/authorize?{grant_screen.query}",
                            headers={"Host": env.shop}, allow_redirects=False, timeout=TIMEOUT)
    assert approved.status_code == 302
    return approved.headers["Location"].replace(PUBLIC_URL, env.url)


def _stores(env: ShopifyEnv) -> list[Store]:
    with env.app.extensions["aftercare.db"].session() as session:
        return list(session.scalars(select(Store)))


def test_install_through_the_grant_screen(database_url: str, tmp_path: Path, clock: FrozenClock) -> None:
    with shopify_env(database_url, tmp_path, clock, **SETTINGS) as env:
        browser = requests.Session()
        callback = _start_install(env, browser)
        answer = browser.get(callback, allow_redirects=False, timeout=TIMEOUT)
        assert answer.status_code == 302
        assert answer.headers["Location"] == f"https://{env.shop}/admin/apps/{TEST_SHOPIFY_API_KEY}"
        [store] = _stores(env)
        assert (store.external_id, store.status, store.installed_at) == (env.shop, "active", clock.now())
        assert store.refresh_token_enc is not None and store.access_token_expires_at is not None
        # The code is single-use and the state is spent: replaying the callback is refused.
        assert browser.get(callback, allow_redirects=False, timeout=TIMEOUT).status_code == 400


def _resign(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    params = {k: v[0] for k, v in parse_qs(parts.query).items()}
    params.update(changes)
    params.pop("hmac")
    params["hmac"] = query_hmac(params, TEST_SHOPIFY_API_SECRET)
    return f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(params)}"


def test_callback_checks_hmac_state_shop_and_age(database_url: str, tmp_path: Path, clock: FrozenClock) -> None:
    with shopify_env(database_url, tmp_path, clock, **SETTINGS) as env:
        cases = {
            "hmac mismatch": lambda url: url.replace("hmac=", "hmac=0"),
            "hmac mismatch ": lambda url: url.replace("code=", "code=x"),  # tampered after signing
            "state mismatch": lambda url: _resign(url, state="guessed-state"),
            "invalid shop domain": lambda url: _resign(url, shop="evil.example.com"),
            "shop differs": lambda url: _resign(url, shop="other-shop.myshopify.com"),
        }
        for reason, mangle in cases.items():
            browser = requests.Session()
            answer = browser.get(mangle(_start_install(env, browser)), allow_redirects=False, timeout=TIMEOUT)
            assert answer.status_code == 400, reason
            assert reason.strip() in answer.json()["error"]

        browser = requests.Session()
        callback = _start_install(env, browser)
        clock.advance(seconds=91)
        answer = browser.get(callback, allow_redirects=False, timeout=TIMEOUT)
        assert answer.status_code == 400
        assert "timestamp outside 90 seconds" in answer.json()["error"]

        # A callback without the cookie of the browser that started the install has no state to match.
        callback = _start_install(env, requests.Session())
        answer = requests.get(callback, allow_redirects=False, timeout=TIMEOUT)
        assert answer.status_code == 400 and "state mismatch" in answer.json()["error"]
        assert _stores(env) == []


def test_install_refuses_a_shop_that_is_not_a_myshopify_domain(database_url: str, tmp_path: Path,
                                                               clock: FrozenClock) -> None:
    with shopify_env(database_url, tmp_path, clock, **SETTINGS) as env:
        for shop in ("", "evil.com", "https://evil.com/admin", "a b.myshopify.com"):
            answer = requests.get(f"{env.url}/auth/install", params={"shop": shop}, allow_redirects=False,
                                  timeout=TIMEOUT)
            assert answer.status_code == 400, shop
