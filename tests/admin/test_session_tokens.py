"""Every embedded admin request is authenticated by an App Bridge session token; the rest is refused."""

from __future__ import annotations

from datetime import timedelta

import jwt

from plugin.auth.session_tokens import LEEWAY_SECONDS
from tests.admin.seed import SHOP_A
from tests.conftest import TEST_SHOPIFY_API_KEY, TEST_SHOPIFY_API_SECRET

RETRY = "X-Shopify-Retry-Invalid-Session-Request"


def test_page_with_a_valid_token_is_served_framed_by_the_shop(client, tenants, token):
    answer = client.get("/admin/", query_string={"id_token": token(), "shop": SHOP_A})
    assert answer.status_code == 200
    csp = answer.headers["Content-Security-Policy"]
    assert "frame-ancestors https://alpha-store.myshopify.com https://admin.shopify.com" in csp.split(";")
    assert answer.headers["Referrer-Policy"] == "same-origin"
    html = answer.get_data(as_text=True)
    assert f'<meta name="shopify-api-key" content="{TEST_SHOPIFY_API_KEY}">' in html
    assert '<script src="https://cdn.shopify.com/shopifycloud/app-bridge.js"></script>' in html
    assert '<html lang="en">' in html


def test_fetch_with_bearer_token_is_served(client, tenants, token):
    answer = client.get("/admin/reviews", headers={"Authorization": f"Bearer {token()}"})
    assert answer.status_code == 200


def test_fetch_without_token_gets_401_with_the_retry_header(client, tenants):
    answer = client.get("/admin/reviews", headers={"Accept": "application/json"})
    assert answer.status_code == 401
    assert answer.headers[RETRY] == "1"
    assert answer.get_json() == {"error": "invalid session", "reason": "missing session token"}


def test_post_without_token_is_refused_and_changes_nothing(client, tenants, app):
    answer = client.post("/admin/cac", data={"cac": "10"})
    assert answer.status_code == 401
    assert answer.headers[RETRY] == "1"
    from plugin.models import Merchant

    with app.extensions["aftercare.db"].session() as session:
        assert session.get(Merchant, tenants[0].merchant_id).cac is None


def test_document_load_without_token_from_shopify_gets_the_friendly_page(client, tenants):
    answer = client.get("/admin/", query_string={"shop": SHOP_A, "host": "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvYQ"})
    assert answer.status_code == 401
    html = answer.get_data(as_text=True)
    assert "Open Aftercare from your Shopify admin" in html
    assert "data-bounce" in html  # with App Bridge the page fetches a fresh token and reloads
    assert "frame-ancestors https://alpha-store.myshopify.com https://admin.shopify.com" in \
        answer.headers["Content-Security-Policy"]


def test_document_load_outside_shopify_goes_to_the_standalone_sign_in(client, tenants):
    answer = client.get("/admin/tickets")
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/admin/login?next=")


def test_expired_token_is_refused_after_the_leeway(client, tenants, token, clock):
    minted = token(ttl=timedelta(seconds=60))
    clock.advance(timedelta(seconds=60 + LEEWAY_SECONDS - 1))
    assert client.get("/admin/", headers={"Authorization": f"Bearer {minted}"}).status_code == 200
    clock.advance(timedelta(seconds=2))
    answer = client.get("/admin/", headers={"Authorization": f"Bearer {minted}"})
    assert answer.status_code == 401
    assert answer.headers[RETRY] == "1"
    assert answer.get_json()["reason"] == "session token expired"


def test_forged_and_foreign_tokens_are_refused(client, tenants, token, clock):
    forged = token(secret="not-the-app-secret-0123456789abcdef")
    other_app = token(client_id="another-app")
    now = int(clock.now().timestamp())
    mismatched = jwt.encode({"iss": "https://bravo-store.myshopify.com/admin", "dest": f"https://{SHOP_A}",
                             "aud": TEST_SHOPIFY_API_KEY, "sub": "1", "exp": now + 60, "nbf": now},
                            TEST_SHOPIFY_API_SECRET, algorithm="HS256")
    not_a_shop = jwt.encode({"iss": "https://evil.example.com/admin", "dest": "https://evil.example.com",
                             "aud": TEST_SHOPIFY_API_KEY, "sub": "1", "exp": now + 60, "nbf": now},
                            TEST_SHOPIFY_API_SECRET, algorithm="HS256")
    none_alg = jwt.encode({"iss": f"https://{SHOP_A}/admin", "dest": f"https://{SHOP_A}",
                           "aud": TEST_SHOPIFY_API_KEY, "exp": now + 60, "nbf": now}, None, algorithm="none")
    for bad in (forged, other_app, mismatched, not_a_shop, none_alg, "garbage"):
        answer = client.get("/admin/", headers={"Authorization": f"Bearer {bad}"})
        assert answer.status_code == 401, bad
        assert answer.headers[RETRY] == "1"


def test_not_yet_valid_token_is_refused(client, tenants, clock):
    now = int(clock.now().timestamp())
    early = jwt.encode({"iss": f"https://{SHOP_A}/admin", "dest": f"https://{SHOP_A}", "aud": TEST_SHOPIFY_API_KEY,
                        "sub": "1", "exp": now + 600, "nbf": now + 120}, TEST_SHOPIFY_API_SECRET, algorithm="HS256")
    assert client.get("/admin/", headers={"Authorization": f"Bearer {early}"}).status_code == 401


def test_root_url_hands_shopify_parameters_to_the_admin(client):
    answer = client.get("/?shop=alpha-store.myshopify.com&host=abc&id_token=x")
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/admin/?shop=alpha-store.myshopify.com&host=abc&id_token=x"
