"""The Judge.me sandbox speaks Judge.me's v1 review/reply API over real loopback HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests

from base.clock import FrozenClock
from sandbox.judgeme import JudgemeSandbox

SHOP = "calm-coffee.myshopify.com"
TOKEN = "private-token-calm"
OTHER_SHOP = "other-store.myshopify.com"
OTHER_TOKEN = "private-token-other"
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
PRODUCTS = [
    {"id": 7001, "handle": "espresso-beans", "title": "Espresso Beans"},
    {"id": 7002, "handle": "descaler", "title": "Descaler"},
    {"id": 7003, "handle": "milk-jug", "title": "Milk Jug"},
]
REVIEWERS = [
    {"email": "ana@example.com", "name": "Ana", "id": 501},
    {"email": "ben@example.de", "name": "Ben", "id": 502},
    {"email": "chi@example.jp", "name": "Chi", "id": 503},
]
PER_PRODUCT = 8
COMPLAINT_WORDS = ("counterfeit", "fake", "fälschung", "contrefaçon", "falsificación", "contraffatto", "偽物",
                   "broken", "damaged", "wrong", "kaputt", "beschädigt", "cassé", "abîmé", "roto", "dañada",
                   "rotto", "danneggiato", "壊れ", "破損")


def _sandbox(seed: int = 7, **kwargs: object) -> JudgemeSandbox:
    options: dict = {"shops": {SHOP: TOKEN, OTHER_SHOP: OTHER_TOKEN}, "products": PRODUCTS,
                     "reviewers": REVIEWERS, "reviews_per_product": PER_PRODUCT, "clock": FrozenClock(NOW)}
    options.update(kwargs)
    return JudgemeSandbox(seed=seed, **options)


@pytest.fixture
def sandbox() -> Iterator[JudgemeSandbox]:
    with _sandbox() as running:
        yield running


def _get(sandbox: JudgemeSandbox, path: str, **params: object) -> requests.Response:
    query = {"shop_domain": SHOP, "api_token": TOKEN, **params}
    return requests.get(f"{sandbox.url}/api/v1{path}", params=query, timeout=5)


def test_seeding_is_deterministic_for_a_seed() -> None:
    first = [r.to_json() for r in _sandbox(seed=7).reviews(SHOP)]
    again = [r.to_json() for r in _sandbox(seed=7).reviews(SHOP)]
    other = [r.to_json() for r in _sandbox(seed=8).reviews(SHOP)]
    assert first == again
    assert [(r["title"], r["rating"]) for r in first] != [(r["title"], r["rating"]) for r in other]


def test_seeded_reviews_cover_products_languages_and_complaints(sandbox: JudgemeSandbox) -> None:
    reviews = sandbox.reviews(SHOP)
    assert len(reviews) == len(PRODUCTS) * PER_PRODUCT
    per_product = {p["id"]: 0 for p in PRODUCTS}
    for review in reviews:
        per_product[review.product.external_id] += 1
        assert review.reviewer.email in {r["email"] for r in REVIEWERS}
        assert 1 <= review.rating <= 5
        assert review.created_at <= NOW
        if review.rating == 1:
            assert any(word in review.body.lower() for word in COMPLAINT_WORDS), review.body
    assert per_product == {p["id"]: PER_PRODUCT for p in PRODUCTS}
    assert len({r.language for r in reviews}) >= 3
    assert len({r.rating for r in reviews}) >= 3


def test_orders_bind_reviews_to_buyers(clock: FrozenClock) -> None:
    orders = [
        {"id": 9001, "email": "ana@example.com", "name": "Ana", "customer_id": 501, "product_ids": [7001]},
        {"id": 9002, "email": "ben@example.de", "name": "Ben", "customer_id": 502, "product_ids": [7001, 7002]},
    ]
    sandbox = JudgemeSandbox(seed=1, shops={SHOP: TOKEN}, products=PRODUCTS, orders=orders,
                             reviews_per_product=4, clock=clock)
    reviews = sandbox.reviews(SHOP)
    by_id = {o["id"]: o for o in orders}
    # 7003 was bought by nobody, so it has no reviews.
    assert sorted(r.product.external_id for r in reviews) == [7001] * 4 + [7002] * 4
    for review in reviews:
        order = by_id[review.order_id]
        assert review.product.external_id in order["product_ids"]
        assert review.reviewer.email == order["email"]
        assert review.reviewer.external_id == order["customer_id"]
        served = sandbox.review_json(SHOP, review.id)
        assert served["verified"] == "buyer"
        assert "order_id" not in served and "language" not in served  # Judge.me serves neither


def test_listing_pages_newest_first_without_gaps(sandbox: JudgemeSandbox) -> None:
    expected = [r.id for r in sorted(sandbox.reviews(SHOP), key=lambda r: (r.created_at, r.id), reverse=True)]
    seen: list[int] = []
    page = 1
    while True:
        response = _get(sandbox, "/reviews", page=page, per_page=5)
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/json"
        payload = response.json()
        assert payload["current_page"] == page and payload["per_page"] == 5
        seen += [r["id"] for r in payload["reviews"]]
        if len(payload["reviews"]) < 5:
            break
        page += 1
    assert seen == expected
    assert page == len(expected) // 5 + 1


def test_review_json_uses_judgeme_field_names(sandbox: JudgemeSandbox) -> None:
    review = _get(sandbox, "/reviews", per_page=1).json()["reviews"][0]
    assert set(review) == {
        "id", "title", "body", "rating", "product_external_id", "reviewer", "source", "curated", "published",
        "hidden", "verified", "featured", "created_at", "updated_at", "has_published_pictures",
        "has_published_videos", "pictures", "ip_address", "product_title", "product_handle"}
    assert set(review["reviewer"]) == {"id", "external_id", "email", "name", "phone", "accepts_marketing",
                                       "unsubscribed_at", "tags"}
    assert datetime.fromisoformat(review["created_at"]).utcoffset() == timedelta(0)
    assert review["created_at"].endswith("+00:00")


def test_per_page_is_capped_at_100_and_defaults_to_10(clock: FrozenClock) -> None:
    with _sandbox(reviews_per_product=40) as sandbox:
        capped = _get(sandbox, "/reviews", per_page=500).json()
        default = _get(sandbox, "/reviews").json()
    assert capped["per_page"] == 100 and len(capped["reviews"]) == 100
    assert default["per_page"] == 10 and len(default["reviews"]) == 10


def test_pages_beyond_the_cap_repeat_the_last_page(clock: FrozenClock) -> None:
    with _sandbox(max_page=2) as sandbox:
        page_two = _get(sandbox, "/reviews", page=2, per_page=5).json()
        page_three = _get(sandbox, "/reviews", page=3, per_page=5).json()
    assert page_three["current_page"] == 2
    assert page_three["reviews"] == page_two["reviews"]


def test_filters_rating_product_and_count(sandbox: JudgemeSandbox) -> None:
    reviews = sandbox.reviews(SHOP)
    one_star = {r.id for r in reviews if r.rating == 1}
    listed = _get(sandbox, "/reviews", rating=1, per_page=100).json()["reviews"]
    assert {r["id"] for r in listed} == one_star
    assert _get(sandbox, "/reviews/count", rating=1).json() == {"count": len(one_star)}
    assert _get(sandbox, "/reviews/count").json() == {"count": len(reviews)}

    # product_id is Judge.me's own id; /products/-1 resolves a Shopify id to it.
    product = _get(sandbox, "/products/-1", external_id="7002").json()["product"]
    assert product["external_id"] == 7002 and product["handle"] == "descaler"
    by_product = _get(sandbox, "/reviews", product_id=product["id"], per_page=100).json()["reviews"]
    assert sorted(r["id"] for r in by_product) == sorted(r.id for r in reviews if r.product.external_id == 7002)
    assert _get(sandbox, "/products/-1", handle="descaler").json()["product"]["id"] == product["id"]
    assert _get(sandbox, "/products/-1", handle="nope").status_code == 404
    assert _get(sandbox, "/reviews", rating=9).status_code == 422
    assert _get(sandbox, "/reviews", page="x").status_code == 422


def test_show_review(sandbox: JudgemeSandbox) -> None:
    review = sandbox.reviews(SHOP)[3]
    response = _get(sandbox, f"/reviews/{review.id}")
    assert response.status_code == 200
    assert response.json() == {"review": review.to_json()}
    assert _get(sandbox, "/reviews/1").status_code == 404
    # Another shop's review is invisible.
    other = sandbox.reviews(OTHER_SHOP)[0]
    assert _get(sandbox, f"/reviews/{other.id}").status_code == 404


@pytest.mark.parametrize("params", [
    {"shop_domain": SHOP, "api_token": "wrong"},
    {"shop_domain": SHOP},
    {"shop_domain": "unknown.myshopify.com", "api_token": TOKEN},
    {"shop_domain": OTHER_SHOP, "api_token": TOKEN},
    {"api_token": TOKEN},
])
def test_bad_credentials_answer_401(sandbox: JudgemeSandbox, params: dict) -> None:
    response = requests.get(f"{sandbox.url}/api/v1/reviews", params=params, timeout=5)
    assert response.status_code == 401
    assert set(response.json()) == {"error"}


def test_token_in_header_is_accepted(sandbox: JudgemeSandbox) -> None:
    response = requests.get(f"{sandbox.url}/api/v1/reviews", params={"shop_domain": SHOP},
                            headers={"X-Api-Token": TOKEN}, timeout=5)
    assert response.status_code == 200
    assert len(response.json()["reviews"]) == 10


def test_shops_are_isolated(sandbox: JudgemeSandbox) -> None:
    mine = {r["id"] for r in _get(sandbox, "/reviews", per_page=100).json()["reviews"]}
    theirs = requests.get(f"{sandbox.url}/api/v1/reviews", timeout=5, params={
        "shop_domain": OTHER_SHOP, "api_token": OTHER_TOKEN, "per_page": 100}).json()["reviews"]
    assert mine == {r.id for r in sandbox.reviews(SHOP)}
    assert {r["id"] for r in theirs} == {r.id for r in sandbox.reviews(OTHER_SHOP)}
    assert not mine & {r["id"] for r in theirs}


def _post_reply(sandbox: JudgemeSandbox, body: object, token: str = TOKEN) -> requests.Response:
    return requests.post(f"{sandbox.url}/api/v1/replies", params={"shop_domain": SHOP},
                         headers={"X-Api-Token": token}, json=body, timeout=5)


def test_reply_is_recorded(sandbox: JudgemeSandbox) -> None:
    review = sandbox.reviews(SHOP)[0]
    response = _post_reply(sandbox, {"review_id": review.id, "send_reply_email": False,
                                     "reply": {"content": "Danke für Ihre Bewertung!"}})
    assert response.status_code == 200
    reply = response.json()["reply"]
    assert reply["review_id"] == review.id and reply["content"] == "Danke für Ihre Bewertung!"
    received = sandbox.replies()
    assert len(received) == 1
    assert (received[0].id, received[0].shop_domain, received[0].review_id, received[0].content,
            received[0].send_reply_email, received[0].received_at) == (
        reply["id"], SHOP, review.id, "Danke für Ihre Bewertung!", False, NOW)


def test_bad_replies_are_refused_and_not_recorded(sandbox: JudgemeSandbox) -> None:
    review = sandbox.reviews(SHOP)[0]
    other_shops_review = sandbox.reviews(OTHER_SHOP)[0]
    cases = [
        ({"review_id": review.id, "reply": {"content": "x"}}, "wrong-token", 401),
        ({"review_id": 1, "reply": {"content": "Thanks"}}, TOKEN, 422),
        ({"review_id": other_shops_review.id, "reply": {"content": "Thanks"}}, TOKEN, 422),
        ({"review_id": review.id, "reply": {"content": "   "}}, TOKEN, 422),
        ({"review_id": review.id}, TOKEN, 422),
        ({"reply": {"content": "Thanks"}}, TOKEN, 422),
        (["not", "an", "object"], TOKEN, 400),
    ]
    for body, token, status in cases:
        response = _post_reply(sandbox, body, token)
        assert response.status_code == status, body
        assert set(response.json()) == {"error"}
    garbled = requests.post(f"{sandbox.url}/api/v1/replies", params={"shop_domain": SHOP},
                            headers={"X-Api-Token": TOKEN, "Content-Type": "application/json"},
                            data=b"{not json", timeout=5)
    assert garbled.status_code == 400
    assert sandbox.replies() == []


def test_added_review_is_listed_first(sandbox: JudgemeSandbox) -> None:
    added = sandbox.add_review(SHOP, product_id=7001, email="new@example.com", name="New Buyer", rating=1,
                               title="Fake", body="This is a fake product", language="en", order_id=9999)
    first = _get(sandbox, "/reviews", per_page=1).json()["reviews"][0]
    assert first["id"] == added.id and first["rating"] == 1 and first["created_at"] == "2026-03-02T12:00:00+00:00"
    assert first["reviewer"]["email"] == "new@example.com"

    over_http = requests.post(f"{sandbox.url}/__sandbox/reviews", timeout=5, json={
        "shop_domain": SHOP, "product_id": 7002, "email": "x@example.com", "rating": 5, "body": "Great",
        "created_at": "2026-03-02T12:30:00+00:00"})
    assert over_http.status_code == 201
    assert _get(sandbox, "/reviews", per_page=1).json()["reviews"][0]["id"] == over_http.json()["review"]["id"]
    assert requests.post(f"{sandbox.url}/__sandbox/reviews", json={"shop_domain": SHOP}, timeout=5).status_code == 400


def test_faults_can_be_switched_over_http(sandbox: JudgemeSandbox) -> None:
    switched = requests.post(f"{sandbox.url}/__sandbox/faults", json={"rate": 1.0, "kinds": ["503"]}, timeout=5)
    assert switched.status_code == 200
    assert _get(sandbox, "/reviews").status_code == 503
    # Control routes are never faulted.
    assert requests.get(f"{sandbox.url}/__sandbox/replies", timeout=5).json() == {"replies": []}
    assert requests.post(f"{sandbox.url}/__sandbox/faults", json={"rate": 0}, timeout=5).status_code == 200
    assert _get(sandbox, "/reviews").status_code == 200
    assert sandbox.faults.counts == {"503": 1}
    bad = requests.post(f"{sandbox.url}/__sandbox/faults", json={"rate": 0.5, "kinds": ["nope"]}, timeout=5)
    assert bad.status_code == 400
