"""LWA token endpoint grants and errors, and the access-token check on every SP-API call."""

from __future__ import annotations

import requests

from tests.sandbox.amazon_support import TIMEOUT, amazon_env  # noqa: F401 - the env fixture

ORDERS = "/orders/v0/orders/"


def _token(env, **form):
    return requests.post(env.sandbox.lwa_token_url, data=form, timeout=TIMEOUT)


def test_refresh_token_grant_gives_a_one_hour_token_that_works(env):
    answer = _token(env, grant_type="refresh_token", refresh_token=env.refresh_token,
                    client_id=env.sandbox.client_id, client_secret=env.sandbox.client_secret)
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    assert body["access_token"].startswith("Atza|") and body["refresh_token"] == env.refresh_token
    order = next(o for o in env.sandbox.orders_of(env.seller.seller_id) if o.purchase_date < env.clock.now())
    ok = env.get(ORDERS + order.order_id, token=body["access_token"])
    assert ok.status_code == 200 and ok.json()["payload"]["AmazonOrderId"] == order.order_id


def test_bad_refresh_token_is_invalid_grant(env):
    answer = _token(env, grant_type="refresh_token", refresh_token="Atzr|forged",
                    client_id=env.sandbox.client_id, client_secret=env.sandbox.client_secret)
    assert answer.status_code == 400
    assert answer.json() == {"error": "invalid_grant",
                             "error_description": "The request has an invalid grant parameter : refresh_token"}


def test_bad_client_secret_is_invalid_client(env):
    answer = _token(env, grant_type="refresh_token", refresh_token=env.refresh_token,
                    client_id=env.sandbox.client_id, client_secret="wrong")
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"
    other_id, other_secret = env.sandbox.register_app()
    answer = _token(env, grant_type="refresh_token", refresh_token=env.refresh_token,
                    client_id=other_id, client_secret=other_secret)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"  # token is another app's


def test_unsupported_grant_and_missing_parameters(env):
    creds = {"client_id": env.sandbox.client_id, "client_secret": env.sandbox.client_secret}
    assert _token(env, grant_type="password", **creds).json()["error"] == "unsupported_grant_type"
    assert _token(env, grant_type="refresh_token", **creds).json()["error"] == "invalid_request"


def test_client_credentials_grant_is_grantless_only(env):
    answer = _token(env, grant_type="client_credentials", scope="sellingpartnerapi::notifications",
                    client_id=env.sandbox.client_id, client_secret=env.sandbox.client_secret)
    assert answer.status_code == 200
    body = answer.json()
    assert body["scope"] == "sellingpartnerapi::notifications" and body["expires_in"] == 3600
    denied = env.get(ORDERS + "111-0000000-0000000", token=body["access_token"])
    assert denied.status_code == 403
    bad_scope = _token(env, grant_type="client_credentials", scope="sellingpartnerapi::orders",
                       client_id=env.sandbox.client_id, client_secret=env.sandbox.client_secret)
    assert bad_scope.status_code == 400 and bad_scope.json()["error"] == "invalid_scope"
    unsupported = env.get("/notifications/v1/destinations", token=body["access_token"])
    assert unsupported.status_code == 404 and unsupported.json()["errors"][0]["code"] == "NotFound"


def test_authorization_code_grant_returns_a_refresh_token(env):
    code = env.sandbox.issue_auth_code(env.seller.seller_id)
    creds = {"client_id": env.sandbox.client_id, "client_secret": env.sandbox.client_secret}
    answer = _token(env, grant_type="authorization_code", code=code, **creds)
    assert answer.status_code == 200 and answer.json()["refresh_token"].startswith("Atzr|")
    again = _token(env, grant_type="authorization_code", code=code, **creds)  # codes are single-use
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_missing_invalid_and_expired_access_tokens_get_403(env):
    missing = env.get(ORDERS + "111-0000000-0000000", token="")
    assert missing.status_code == 403
    assert missing.json() == {"errors": [{"code": "Unauthorized",
                                          "message": "Access to requested resource is denied.", "details": ""}]}
    assert missing.headers["x-amzn-RequestId"]
    forged = env.get(ORDERS + "111-0000000-0000000", token="Atza|forged")
    assert forged.status_code == 403
    assert forged.json()["errors"][0] == {
        "code": "Unauthorized", "message": "Access to requested resource is denied.",
        "details": "The access token you provided is revoked, malformed or invalid."}
    env.clock.advance(seconds=3599)
    assert env.get("/orders/v0/orders", params={"CreatedAfter": "2026-01-01T00:00:00Z",
                                                "MarketplaceIds": "ATVPDKIKX0DER"}).status_code == 200
    env.clock.advance(seconds=1)
    expired = env.get("/orders/v0/orders", params={"CreatedAfter": "2026-01-01T00:00:00Z",
                                                   "MarketplaceIds": "ATVPDKIKX0DER"})
    assert expired.status_code == 403
    assert expired.json()["errors"][0]["details"] == "The access token you provided has expired."
