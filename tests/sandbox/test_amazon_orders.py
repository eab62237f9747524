"""Orders v0 and 2026-01-01: paging over exactly the seeded orders, token encoding, query rules."""

from __future__ import annotations

from datetime import timedelta

import requests

from sandbox.amazon.marketplaces import DE, US
from tests.sandbox.amazon_support import NOW, TIMEOUT, amazon_env, lwa_token  # noqa: F401 - env fixture

SEARCH = "/orders/2026-01-01/orders"
V0 = "/orders/v0/orders"


def _iso(when):
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _expected(env, after, before, marketplaces=None):
    """The seeded orders a created-time search must return, computed from the seed data."""
    mps = marketplaces or env.seller.marketplace_ids
    chosen = [o for o in env.sandbox.orders
              if o.seller_id == env.seller.seller_id and o.marketplace_id in mps and after <= o.purchase_date <= before]
    return [o.order_id for o in sorted(chosen, key=lambda o: (o.purchase_date, o.order_id))]


def test_search_orders_pages_return_exactly_the_seeded_orders(env):
    after = NOW - timedelta(days=130)
    expected = _expected(env, after, NOW - timedelta(minutes=2))
    assert len(expected) > 150  # several pages at 40 per page
    seen, tokens = [], []
    answer = env.get(SEARCH, params={"createdAfter": _iso(after), "maxResultsPerPage": 40})
    while True:
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["createdBefore"] == _iso(NOW - timedelta(minutes=2))
        seen += [o["orderId"] for o in body["orders"]]
        assert len(body["orders"]) <= 40
        token = body.get("pagination", {}).get("nextToken")
        if not token:
            break
        tokens.append(token)
        answer = env.get(SEARCH, params={"paginationToken": token})  # requests URL-encodes it
    assert seen == expected
    assert len(tokens) == (len(expected) - 1) // 40
    assert all("+" in t and "/" in t and t.endswith("=") for t in tokens)


def test_an_unencoded_token_is_rejected(env):
    body = env.get(SEARCH, params={"createdAfter": _iso(NOW - timedelta(days=100)),
                                   "maxResultsPerPage": 5}).json()
    token = body["pagination"]["nextToken"]
    raw = requests.get(f"{env.sandbox.url}{SEARCH}?paginationToken={token}",  # '+' arrives as a space
                       headers={"x-amz-access-token": env.token}, timeout=TIMEOUT)
    assert raw.status_code == 400
    assert raw.json()["errors"][0]["code"] == "InvalidInput"


def test_marketplace_and_fulfilment_filters(env):
    after = NOW - timedelta(days=30)
    body = env.get(SEARCH, params={"createdAfter": _iso(after), "marketplaceIds": DE, "fulfilledBy": "AMAZON",
                                   "includedData": "FULFILLMENT"}).json()
    expected = [o for o in _expected(env, after, NOW - timedelta(minutes=2), [DE])
                if env.sandbox.orders_by_id[o].fulfillment_channel == "AFN"]
    assert [o["orderId"] for o in body["orders"]] == expected
    assert {o["fulfillment"]["fulfilledBy"] for o in body["orders"]} == {"AMAZON"}
    assert {o["salesChannel"]["marketplaceName"] for o in body["orders"]} == {"Amazon.de"}


def test_exactly_one_of_created_after_and_last_updated_after(env):
    both = env.get(SEARCH, params={"createdAfter": "2026-01-01T00:00:00Z", "lastUpdatedAfter": "2026-01-01T00:00:00Z"})
    neither = env.get(SEARCH, params={"marketplaceIds": US})
    mixed = env.get(SEARCH, params={"createdAfter": "2026-01-01T00:00:00Z",
                                    "lastUpdatedBefore": "2026-02-01T00:00:00Z"})
    v0_both = env.get(V0, params={"MarketplaceIds": US, "CreatedAfter": "2026-01-01T00:00:00Z",
                                  "LastUpdatedAfter": "2026-01-01T00:00:00Z"})
    for answer in (both, neither, mixed, v0_both):
        assert answer.status_code == 400
        assert answer.json()["errors"][0]["code"] == "InvalidInput"


def test_before_bound_must_be_two_minutes_in_the_past(env):
    after = "2026-02-01T00:00:00Z"
    ok = env.get(SEARCH, params={"createdAfter": after, "createdBefore": _iso(NOW - timedelta(minutes=2))})
    late = env.get(SEARCH, params={"createdAfter": after, "createdBefore": _iso(NOW - timedelta(seconds=119))})
    v0_late = env.get(V0, params={"MarketplaceIds": US, "LastUpdatedAfter": after,
                                  "LastUpdatedBefore": _iso(NOW - timedelta(seconds=60))})
    assert ok.status_code == 200
    assert late.status_code == 400 and "two minutes" in late.json()["errors"][0]["message"]
    assert v0_late.status_code == 400


def test_v0_get_orders_pages_with_next_token_and_model_rules(env):
    after = NOW - timedelta(days=60)
    expected = _expected(env, after, NOW - timedelta(minutes=2), [US])
    seen, params = [], {"MarketplaceIds": US, "CreatedAfter": _iso(after), "MaxResultsPerPage": 25}
    while True:
        payload = env.get(V0, params=params).json()["payload"]
        seen += [o["AmazonOrderId"] for o in payload["Orders"]]
        for order in payload["Orders"]:
            seeded = env.sandbox.orders_by_id[order["AmazonOrderId"]]
            # The model: delivery dates are only returned for seller-fulfilled orders.
            assert ("EarliestDeliveryDate" in order) == (seeded.fulfillment_channel == "MFN")
            assert order["OrderStatus"] == seeded.status_at(NOW)
        if "NextToken" not in payload:
            break
        params = {"MarketplaceIds": US, "NextToken": payload["NextToken"]}
    assert seen == expected


def test_last_updated_search_sees_orders_ship_as_the_clock_moves(env):
    fresh = [env.sandbox.add_order(env.seller.seller_id, US, NOW - timedelta(minutes=10)) for _ in range(3)]
    fresh = [o for o in fresh if o.status_at(NOW) != "Canceled"]
    assert fresh and all(o.status_at(NOW) in ("Pending", "Unshipped") for o in fresh)
    env.clock.advance(days=4)
    env.token = lwa_token(env.sandbox, env.refresh_token)  # the first token expired meanwhile
    body = env.get(SEARCH, params={"lastUpdatedAfter": _iso(NOW), "includedData": "FULFILLMENT"}).json()
    found = {o["orderId"]: o for o in body["orders"]}
    for order in fresh:
        assert found[order.order_id]["fulfillment"]["fulfillmentStatus"] == "SHIPPED"
        # The last status change, or later: a package's delivery scan also updates the order.
        assert found[order.order_id]["lastUpdatedTime"] == _iso(order.last_update_at(env.clock.now()))
        assert found[order.order_id]["lastUpdatedTime"] >= _iso(order.timeline[-1][0])
    assert body["lastUpdatedBefore"] == _iso(NOW + timedelta(days=4, minutes=-2))


def test_get_order_items_and_isolation_between_sellers(env):
    order = next(o for o in env.sandbox.orders_of(env.seller.seller_id)
                 if o.purchase_date < NOW and len(o.items) > 1)
    items = env.get(f"{V0}/{order.order_id}/orderItems").json()["payload"]
    assert items["AmazonOrderId"] == order.order_id
    assert [(i["OrderItemId"], i["SellerSKU"], i["QuantityOrdered"]) for i in items["OrderItems"]] == [
        (i.order_item_id, i.sku, i.quantity) for i in order.items]
    other = next(o for o in env.sandbox.orders if o.seller_id != env.seller.seller_id and o.purchase_date < NOW)
    assert env.get(f"{V0}/{other.order_id}").status_code == 404
    assert env.get(f"{SEARCH}/{other.order_id}").status_code == 404
    one = env.get(f"{SEARCH}/{order.order_id}", params={"includedData": "BUYER,PROCEEDS"}).json()["order"]
    assert one["buyer"]["buyerEmail"] == order.buyer_email
    assert one["proceeds"]["grandTotal"] == {"amount": str(order.total), "currencyCode": order.currency}
    assert env.get(f"{SEARCH}/{order.order_id}", params={"includedData": "NOPE"}).status_code == 400


def test_seed_is_deterministic():
    from datetime import UTC, datetime

    from sandbox.amazon.seed import generate
    a = generate(11, 200, datetime(2026, 1, 1, tzinfo=UTC))
    b = generate(11, 200, datetime(2026, 1, 1, tzinfo=UTC))
    c = generate(12, 200, datetime(2026, 1, 1, tzinfo=UTC))
    assert [o.order_id for o in a.orders] == [o.order_id for o in b.orders]
    assert [o.order_id for o in a.orders] != [o.order_id for o in c.orders]
    assert {len(s.marketplace_ids) for s in a.sellers} == {7, 3, 1}
    assert {o.fulfillment_channel for o in a.orders} == {"AFN", "MFN"}
    statuses = {o.status_at(datetime(2026, 1, 1, tzinfo=UTC)) for o in a.orders}
    assert {"Shipped", "Canceled"} <= statuses


def test_pages_stay_stable_when_orders_arrive_between_pages(env):
    after = NOW - timedelta(days=20)
    expected = _expected(env, after, NOW - timedelta(minutes=2))
    first = env.get(SEARCH, params={"createdAfter": _iso(after), "maxResultsPerPage": 10}).json()
    env.clock.advance(minutes=10)
    for minutes in (30, 60 * 24 * 5, 60 * 24 * 19):  # new orders before, inside and after page one's range
        env.sandbox.add_order(env.seller.seller_id, US, NOW - timedelta(minutes=minutes))
    seen = [o["orderId"] for o in first["orders"]]
    token = first["pagination"]["nextToken"]
    while token:
        body = env.get(SEARCH, params={"paginationToken": token}).json()
        seen += [o["orderId"] for o in body["orders"]]
        token = body.get("pagination", {}).get("nextToken")
    newcomers = [o.order_id for o in env.sandbox.orders[-3:]]
    # the search is pinned to its first createdBefore: later arrivals inside the range appear once, in order
    assert [o for o in seen if o not in newcomers] == expected
    assert len(seen) == len(set(seen))


def test_partial_shipment_counts_and_packages(env):
    order = env.sandbox.add_order(env.seller.seller_id, US, NOW - timedelta(hours=5), "MFN")
    while len(order.items) < 2:
        order = env.sandbox.add_order(env.seller.seller_id, US, NOW - timedelta(hours=5), "MFN")
    env.sandbox.set_status(order.order_id, "Unshipped", NOW - timedelta(hours=4))
    env.sandbox.set_status(order.order_id, "PartiallyShipped", NOW - timedelta(hours=3))
    env.sandbox.set_status(order.order_id, "Shipped", NOW + timedelta(hours=2))
    first, rest = order.items[0].quantity, sum(i.quantity for i in order.items[1:])
    v0 = env.get(f"{V0}/{order.order_id}").json()["payload"]
    assert (v0["OrderStatus"], v0["NumberOfItemsShipped"], v0["NumberOfItemsUnshipped"]) == (
        "PartiallyShipped", first, rest)
    new = env.get(f"{SEARCH}/{order.order_id}", params={"includedData": "FULFILLMENT,PACKAGES"}).json()["order"]
    assert new["fulfillment"]["fulfillmentStatus"] == "PARTIALLY_SHIPPED"
    assert [[p["orderItemId"] for p in pkg["packageItems"]] for pkg in new["packages"]] == [
        [order.items[0].order_item_id]]
    env.at(NOW + timedelta(hours=3))
    new = env.get(f"{SEARCH}/{order.order_id}", params={"includedData": "PACKAGES"}).json()["order"]
    assert [pkg["shipTime"] for pkg in new["packages"]] == [_iso(NOW - timedelta(hours=3)),
                                                            _iso(NOW + timedelta(hours=2))]
    assert sum(len(pkg["packageItems"]) for pkg in new["packages"]) == len(order.items)
