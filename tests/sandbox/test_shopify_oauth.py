"""OAuth token endpoint: code grant, token exchange, expiring offline tokens, refresh rotation, revocation.

Also driven through Shopify's own ``shopify_app`` library (token_exchange, refresh_access_token) with an
httpx transport that carries its ``https://<shop>.myshopify.com`` requests to the sandbox on loopback.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from urllib.parse import parse_qsl, urlparse

import httpx
import jwt
import pytest
import requests
from shopify_app import token_exchange
from shopify_app.exchange.refresh_token import refresh_access_token

from sandbox.shopify import mint_session_token
from tests.sandbox.shopify_support import CLIENT_ID, CLIENT_SECRET, SHOP, TIMEOUT, make_env

INVALID = {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
APP_CONFIG = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}


class LoopbackTransport(httpx.HTTPTransport):
    """Send requests for any host to the sandbox, keeping the original Host header (the shop)."""

    def __init__(self, base_url: str):
        super().__init__()
        self.base = httpx.URL(base_url)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(scheme="http", host=self.base.host, port=self.base.port)
        return super().handle_request(request)


@pytest.fixture()
def env():
    yield from make_env(customers=10, orders=30)


@pytest.fixture()
def client(env):
    with httpx.Client(transport=LoopbackTransport(env.url), timeout=TIMEOUT) as c:
        yield c


def _post(env, body, shop=SHOP):
    return requests.post(f"{env.url}/admin/oauth/access_token", json=body, headers={"Host": shop},
                         timeout=TIMEOUT)


def _id_token(env, **kwargs):
    token = mint_session_token(SHOP, CLIENT_ID, CLIENT_SECRET, env.clock.now(), user_id=42, **kwargs)
    claims = jwt.decode(token, options={"verify_signature": False})
    return {"exchangeable": True, "token": token, "claims": claims}


def test_session_token_claims(env):
    token = mint_session_token(SHOP, CLIENT_ID, CLIENT_SECRET, env.clock.now(), user_id=42, sid="s1", jti="j1")
    claims = jwt.decode(token, CLIENT_SECRET, algorithms=["HS256"], audience=CLIENT_ID,
                        options={"verify_exp": False, "verify_nbf": False, "verify_iat": False})
    now = int(env.clock.now().timestamp())
    assert claims == {"iss": f"https://{SHOP}/admin", "dest": f"https://{SHOP}", "aud": CLIENT_ID, "sub": "42",
                      "exp": now + 60, "nbf": now, "iat": now, "jti": "j1", "sid": "s1"}
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_shopify_app_token_exchange_then_refresh_with_rotation(env, client):
    result = token_exchange("offline", APP_CONFIG, id_token=_id_token(env), expiring=True, http_client=client)
    assert result.ok, result.log
    access = result.access_token
    assert access.token.startswith("shpat_")
    assert access.scope == "read_orders,read_all_orders,read_customers,read_products,write_discounts"
    assert access.refresh_token.startswith("shprt_") and access.expires and access.refresh_token_expires
    assert env.data("{ shop { name } }", token=access.token)["shop"]["name"] == env.sandbox.store.shop.name

    env.clock.advance(timedelta(seconds=3600))
    answer = env.gql("{ shop { name } }", token=access.token)
    assert (answer.status_code, answer.json()) == (401, INVALID)

    stale = {"shop": "aftercare-demo", "refresh_token": access.refresh_token, "expires": "2000-01-01T00:00:00Z",
             "refresh_token_expires": "", "access_mode": "offline"}
    refreshed = refresh_access_token(stale, APP_CONFIG, http_client=client)
    assert refreshed.ok, refreshed.log
    second = refreshed.access_token
    assert second.token != access.token and second.refresh_token != access.refresh_token
    assert env.data("{ shop { name } }", token=second.token)["shop"]["name"]

    # Using the replacement refresh token retires the original one.
    third = refresh_access_token({**stale, "refresh_token": second.refresh_token}, APP_CONFIG, http_client=client)
    assert third.ok
    again = refresh_access_token(stale, APP_CONFIG, http_client=client)
    assert (again.ok, again.log.code) == (False, "invalid_grant")
    raw = _post(env, {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "grant_type": "refresh_token",
                      "refresh_token": access.refresh_token})
    assert raw.status_code == 400
    assert raw.json()["error"] == "invalid_grant"


def test_token_exchange_raw_response_shape(env):
    body = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": _id_token(env)["token"], "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
            "requested_token_type": "urn:shopify:params:oauth:token-type:offline-access-token", "expiring": 1}
    answer = _post(env, body)
    assert answer.status_code == 200
    data = answer.json()
    assert set(data) == {"access_token", "scope", "expires_in", "refresh_token", "refresh_token_expires_in"}
    assert (data["expires_in"], data["refresh_token_expires_in"]) == (3600, 90 * 86400)
    non_expiring = _post(env, {**body, "expiring": 0}).json()
    assert set(non_expiring) == {"access_token", "scope"}
    online = _post(env, {**body, "requested_token_type":
                         "urn:shopify:params:oauth:token-type:online-access-token"}).json()
    assert online["expires_in"] == 86399
    assert online["associated_user"]["id"] == 42
    assert online["access_token"].startswith("shpua_")


def test_bad_session_tokens_are_invalid_subject_token(env, client):
    forged = _id_token(env)
    forged["token"] = mint_session_token(SHOP, CLIENT_ID, "shpss_ffffffffffffffffffffffffffffffff", env.clock.now())
    result = token_exchange("offline", APP_CONFIG, id_token=forged, http_client=client)
    assert (result.ok, result.log.code) == (False, "invalid_subject_token")
    expired = _id_token(env)
    env.clock.advance(timedelta(minutes=5))
    result = token_exchange("offline", APP_CONFIG, id_token=expired, http_client=client)
    assert (result.ok, result.log.code) == (False, "invalid_subject_token")
    other_shop = mint_session_token("other.myshopify.com", CLIENT_ID, CLIENT_SECRET, env.clock.now())
    answer = _post(env, {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                         "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                         "subject_token": other_shop,
                         "subject_token_type": "urn:ietf:params:oauth:token-type:id_token"})
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_subject_token")


def test_wrong_client_secret_is_invalid_client(env, client):
    result = token_exchange("offline", {**APP_CONFIG, "client_secret": "nope"}, id_token=_id_token(env),
                            http_client=client)
    assert (result.ok, result.log.code) == (False, "invalid_client")


def test_authorization_code_grant_once_per_code(env):
    code = env.sandbox.authorize(CLIENT_ID)
    body = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "code": code}
    answer = _post(env, body)
    assert answer.status_code == 200
    token = answer.json()["access_token"]
    assert answer.json()["scope"] == ",".join(env.sandbox.app(CLIENT_ID).scopes)
    assert env.data("{ shop { myshopifyDomain } }", token=token)["shop"]["myshopifyDomain"] == SHOP
    assert _post(env, body).status_code == 400


def test_authorize_redirects_with_a_valid_hmac(env):
    answer = requests.get(f"{env.url}/admin/oauth/authorize", headers={"Host": SHOP}, allow_redirects=False,
                          params={"client_id": CLIENT_ID, "scope": "read_orders", "state": "nonce-1",
                                  "redirect_uri": "https://app.example.com/auth/callback"}, timeout=TIMEOUT)
    assert answer.status_code == 302
    location = urlparse(answer.headers["Location"])
    assert (location.netloc, location.path) == ("app.example.com", "/auth/callback")
    params = dict(parse_qsl(location.query))
    assert params["shop"] == SHOP and params["state"] == "nonce-1"
    message = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "hmac")
    assert params["hmac"] == hmac.new(CLIENT_SECRET.encode(), message.encode(), hashlib.sha256).hexdigest()
    exchanged = _post(env, {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "code": params["code"]})
    assert exchanged.status_code == 200


def test_revoked_tokens_get_401(env):
    assert env.gql("{ shop { name } }").status_code == 200
    assert env.sandbox.revoke(CLIENT_ID) == 1
    answer = env.gql("{ shop { name } }")
    assert (answer.status_code, answer.json()) == (401, INVALID)
