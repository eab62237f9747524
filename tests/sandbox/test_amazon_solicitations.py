"""Solicitations: the 5-30 day window around the delivery dates, once per order, and the errors."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sandbox.amazon.marketplaces import DE, US
from tests.sandbox.amazon_support import NOW, amazon_env  # noqa: F401 - the env fixture

NOT_AVAILABLE = {"errors": [{"code": "Unauthorized", "message": "The requested solicitation is not available "
                             "for this amazonOrderId.", "details": ""}]}
OUTSIDE = {"errors": [{"code": "Unauthorized", "message": "You can\u2019t use this feature to request a review "
                       "outside the 5-30 day range after the order delivery date.", "details": ""}]}


def _paths(order_id):
    base = f"/solicitations/v1/orders/{order_id}"
    return base, base + "/solicitations/productReviewAndSellerFeedback"


def _actions(env, order, marketplace=None):
    answer = env.get(_paths(order.order_id)[0], params={"marketplaceIds": marketplace or order.marketplace_id})
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("application/hal+json")
    return [a["name"] for a in answer.json()["_links"]["actions"]]


def _send(env, order):
    return env.post(_paths(order.order_id)[1], params={"marketplaceIds": order.marketplace_id})


@pytest.fixture
def order(env):
    """A fresh shipped-and-delivered order whose delivery dates the test controls through the clock."""
    created = env.sandbox.add_order(env.seller.seller_id, US, NOW - timedelta(hours=1), "MFN")
    env.sandbox.set_status(created.order_id, "Unshipped", NOW - timedelta(minutes=50))
    env.sandbox.set_status(created.order_id, "Shipped", NOW)
    return created


@pytest.mark.parametrize("offset, open_", [
    (timedelta(days=4), False),
    (timedelta(days=4, hours=23, minutes=59, seconds=59), False),
    (timedelta(days=5), True),
    (timedelta(days=6), True),
])
def test_window_opens_five_days_after_earliest_delivery(env, order, offset, open_):
    env.at(order.earliest_delivery_date + offset)
    assert _actions(env, order) == (["productReviewAndSellerFeedback"] if open_ else [])
    answer = _send(env, order)
    assert answer.status_code == (201 if open_ else 403)
    assert answer.json() == ({} if open_ else OUTSIDE)


@pytest.mark.parametrize("offset, open_", [(timedelta(days=30), True), (timedelta(days=30, seconds=1), False)])
def test_window_closes_thirty_days_after_latest_delivery(env, order, offset, open_):
    env.at(order.latest_delivery_date + offset)
    assert _actions(env, order) == (["productReviewAndSellerFeedback"] if open_ else [])
    assert _send(env, order).status_code == (201 if open_ else 403)


def test_once_per_order_and_the_ledger(env, order):
    when = order.earliest_delivery_date + timedelta(days=7)
    env.at(when)
    first = _send(env, order)
    assert first.status_code == 201
    assert first.headers["x-amzn-RateLimit-Limit"] == "1.0"
    assert _actions(env, order) == []
    second = _send(env, order)
    assert second.status_code == 403 and second.json() == NOT_AVAILABLE
    records = [r for r in env.sandbox.solicitations.records if r.order_id == order.order_id]
    assert [(r.marketplace_id, r.seller_id, r.sent_at) for r in records] == [(US, env.seller.seller_id, when)]


def test_canceled_orders_are_not_eligible(env, order):
    env.sandbox.cancel_order(order.order_id, NOW + timedelta(minutes=1))
    env.at(order.earliest_delivery_date + timedelta(days=6))
    assert _actions(env, order) == []
    answer = _send(env, order)
    assert answer.status_code == 403 and answer.json() == NOT_AVAILABLE
    assert env.sandbox.solicitations.records == []


def test_bad_requests(env, order):
    env.at(order.earliest_delivery_date + timedelta(days=6))
    no_marketplace = env.post(_paths(order.order_id)[1])
    assert no_marketplace.status_code == 400
    assert no_marketplace.json()["errors"][0]["code"] == "InvalidInput"
    assert env.get(_paths(order.order_id)[0], params={"marketplaceIds": DE}).status_code == 400
    unknown = env.post(_paths("111-0000000-0000000")[1], params={"marketplaceIds": US})
    assert unknown.status_code == 404 and unknown.json()["errors"][0]["code"] == "NotFound"
    assert env.sandbox.solicitations.records == []


def test_python_sdk_style_extra_keys_are_tolerated(env, order):
    """python-amazon-sp-api adds MarketplaceId(s)/marketplace_ids to GETs and a JSON body to POSTs."""
    env.at(order.earliest_delivery_date + timedelta(days=6))
    base, post = _paths(order.order_id)
    got = env.get(base, params={"marketplaceIds": US, "MarketplaceIds": US, "MarketplaceId": US,
                                "marketplace_ids": US}, headers={"x-amz-date": "20260301T120000Z",
                                                                 "user-agent": "python-sp-api-2.1.35",
                                                                 "host": "sellingpartnerapi-na.amazon.com"})
    assert [a["name"] for a in got.json()["_links"]["actions"]] == ["productReviewAndSellerFeedback"]
    sent = env.post(post, params={"marketplaceIds": US}, json={"marketplaceIds": [US], "MarketplaceIds": [US]})
    assert sent.status_code == 201
