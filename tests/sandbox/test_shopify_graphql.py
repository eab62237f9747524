"""Admin GraphQL over real HTTP: error shapes, paging, search, sort keys, access rules, shop routing."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests

from tests.sandbox.shopify_support import CLIENT_ID, CLIENT_SECRET, SHOP, TIMEOUT, make_env

ORDER_PAGE = """query($first: Int, $after: String, $last: Int, $before: String, $query: String,
                     $sortKey: OrderSortKeys, $reverse: Boolean) {
  orders(first: $first, after: $after, last: $last, before: $before, query: $query, sortKey: $sortKey,
         reverse: $reverse) {
    edges { cursor node { id name createdAt updatedAt } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""


@pytest.fixture(scope="module")
def env():
    yield from make_env()


def _iso(dt):
    return dt.isoformat().replace("+00:00", "Z")


def _walk(env, first=50, **variables):
    ids, after, pages = [], None, 0
    while True:
        conn = env.data(ORDER_PAGE, {"first": first, "after": after, **variables})["orders"]
        ids += [e["node"]["id"] for e in conn["edges"]]
        pages += 1
        if not conn["pageInfo"]["hasNextPage"]:
            return ids, pages
        after = conn["pageInfo"]["endCursor"]


def test_invalid_document_gets_shopify_error_shape(env):
    document = "{ orders(first: 1) { nodes { id bogusField } } }"
    body = env.gql(document).json()
    assert "data" not in body
    (error,) = body["errors"]
    assert error["message"] == "Field 'bogusField' doesn't exist on type 'Order'"
    assert error["locations"] == [{"line": 1, "column": document.index("bogusField") + 1}]
    assert error["extensions"] == {"code": "undefinedField", "typeName": "Order", "fieldName": "bogusField"}


def test_syntax_error_and_missing_query(env):
    document = "{ orders(first: 1 { nodes { id } } }"
    body = env.gql(document).json()
    assert body["errors"][0]["extensions"]["code"] == "PARSE_ERROR"
    assert body["errors"][0]["locations"] == [{"line": 1, "column": document.index("{ nodes") + 1}]
    body = requests.post(f"{env.url}/admin/api/2025-01/graphql.json", json={"variables": {}},
                         headers={"X-Shopify-Access-Token": env.token, "Host": SHOP}, timeout=TIMEOUT).json()
    assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


def test_bad_token_gets_401_like_shopify(env):
    answer = env.gql("{ shop { name } }", token="shpat_nope")
    assert answer.status_code == 401
    assert answer.json() == {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}


def test_first_must_be_at_most_250_and_one_of_first_last(env):
    body = env.gql("{ orders(first: 251) { nodes { id } } }").json()
    assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert body["errors"][0]["path"] == ["orders"]
    body = env.gql("{ orders { nodes { id } } }").json()
    assert body["errors"][0]["message"] == "you must provide one of first or last"


def test_paging_over_all_orders_returns_exactly_the_seeded_set(env):
    ids, pages = _walk(env, first=50)
    expected = sorted(o.id for o in env.sandbox.store.orders)
    assert [int(i.rsplit("/", 1)[1]) for i in ids] == expected  # default sort: ID ascending
    assert pages == -(-len(expected) // 50)


def test_sort_keys_reverse_and_backwards_paging(env):
    orders = env.sandbox.store.orders
    by_updated = [o.gid for o in sorted(orders, key=lambda o: (o.updated_at, o.id))]
    ids, _ = _walk(env, first=70, sortKey="UPDATED_AT")
    assert ids == by_updated
    ids, _ = _walk(env, first=70, sortKey="CREATED_AT", reverse=True)
    assert ids == [o.gid for o in sorted(orders, key=lambda o: (o.created_at, o.id), reverse=True)]
    # last/before walks backwards from the end
    conn = env.data(ORDER_PAGE, {"last": 10, "sortKey": "UPDATED_AT"})["orders"]
    assert [e["node"]["id"] for e in conn["edges"]] == by_updated[-10:]
    assert conn["pageInfo"] == {**conn["pageInfo"], "hasNextPage": False, "hasPreviousPage": True}
    before = env.data(ORDER_PAGE, {"last": 10, "before": conn["pageInfo"]["startCursor"],
                                   "sortKey": "UPDATED_AT"})["orders"]
    assert [e["node"]["id"] for e in before["edges"]] == by_updated[-20:-10]


def test_search_filters_on_dates_combined(env):
    orders = env.sandbox.store.orders
    lo = env.clock.now() - timedelta(days=200)
    hi = env.clock.now() - timedelta(days=100)
    query = f"updated_at:>='{_iso(lo)}' AND updated_at:<'{_iso(hi)}' created_at:>={_iso(lo - timedelta(days=30))}"
    ids, _ = _walk(env, first=100, query=query, sortKey="UPDATED_AT")
    expected = [o.gid for o in sorted(orders, key=lambda o: (o.updated_at, o.id))
                if lo <= o.updated_at < hi and o.created_at >= lo - timedelta(days=30)]
    assert expected and ids == expected


def test_unknown_search_field_is_a_warning_not_a_filter(env):
    body = env.gql(ORDER_PAGE, {"first": 5, "query": "colour:blue"}).json()
    assert len(body["data"]["orders"]["edges"]) == 5
    assert body["extensions"]["search"][0]["warnings"] == [
        {"field": "colour", "message": "Invalid search field for this query."}]


def test_order_fields_match_the_seeded_record(env):
    order = next(o for o in env.sandbox.store.orders if o.fulfillments and o.refunds)
    data = env.data("""query($id: ID!) { order(id: $id) {
        id name displayFinancialStatus displayFulfillmentStatus currencyCode email customerLocale
        totalPriceSet { shopMoney { amount currencyCode } } totalRefundedSet { shopMoney { amount } }
        customer { id } lineItems(first: 50) { nodes { sku quantity originalUnitPriceSet { shopMoney { amount } } } }
        fulfillments(first: 5) { status deliveredAt estimatedDeliveryAt displayStatus }
        refunds(first: 5) { totalRefundedSet { shopMoney { amount } } } } }""", {"id": order.gid})["order"]
    assert data["name"] == order.name
    assert data["displayFinancialStatus"] == order.financial_status
    assert data["email"] == order.email
    assert data["customer"]["id"] == f"gid://shopify/Customer/{order.customer_id}"
    total = sum(li.unit_price_cents * li.quantity for li in order.line_items)
    assert data["totalPriceSet"]["shopMoney"] == {"amount": f"{total // 100}.{total % 100:02d}",
                                                  "currencyCode": "USD"}
    assert [(n["sku"], n["quantity"]) for n in data["lineItems"]["nodes"]] == \
        [(li.sku, li.quantity) for li in order.line_items]
    f = order.fulfillments[0]
    assert data["fulfillments"][0]["deliveredAt"] == (_iso(f.delivered_at) if f.delivered_at else None)
    assert len(data["refunds"]) == len(order.refunds)


def test_customer_fields_and_time_zone_on_the_address(env):
    customer = env.sandbox.store.customers[3]
    data = env.data("""query($id: ID!) { customer(id: $id) { id firstName lastName email locale numberOfOrders
        emailMarketingConsent { marketingState marketingOptInLevel consentUpdatedAt }
        defaultAddress { countryCodeV2 timeZone } } }""", {"id": customer.gid})["customer"]
    assert data["firstName"] == customer.first_name
    assert data["locale"] == customer.locale
    assert data["numberOfOrders"] == str(sum(1 for o in env.sandbox.store.orders if o.customer_id == customer.id))
    assert data["defaultAddress"] == {"countryCodeV2": customer.country, "timeZone": customer.time_zone}
    assert data["emailMarketingConsent"]["marketingState"] == customer.marketing_state


def test_node_and_nodes_resolve_types(env):
    store = env.sandbox.store
    ids = [store.orders[0].gid, store.customers[0].gid, store.products[0].gid,
           store.products[0].variants[0].gid, "gid://shopify/Order/1"]
    data = env.data("""query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }""", {"ids": ids})
    assert [n and n["__typename"] for n in data["nodes"]] == \
        ["Order", "Customer", "Product", "ProductVariant", None]


def test_input_arrays_are_capped_at_250(env):
    ids = [f"gid://shopify/Order/{n}" for n in range(251)]
    body = env.gql("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": ids}).json()
    assert body["errors"][0]["extensions"]["code"] == "MAX_INPUT_SIZE_EXCEEDED"
    assert body["errors"][0]["message"] == \
        "The input array size of 251 is greater than the maximum allowed of 250."


def test_older_than_60_days_needs_read_all_orders():
    for env in make_env(scopes=("read_orders", "read_customers")):
        cutoff = env.clock.now() - timedelta(days=60)
        recent = sorted(o.id for o in env.sandbox.store.orders if o.created_at >= cutoff)
        old = next(o for o in env.sandbox.store.orders if o.created_at < cutoff)
        ids, _ = _walk(env, first=100)
        assert [int(i.rsplit("/", 1)[1]) for i in ids] == recent
        assert 0 < len(recent) < len(env.sandbox.store.orders)
        assert env.data("query($id: ID!) { order(id: $id) { id } }", {"id": old.gid})["order"] is None


def test_protected_customer_data_is_null_without_access():
    for env in make_env(protected=False):
        customer = next(c for c in env.sandbox.store.customers if c.phone)
        data = env.data("""query($id: ID!) { customer(id: $id) { firstName lastName email phone locale
            defaultAddress { countryCodeV2 timeZone firstName } } }""", {"id": customer.gid})["customer"]
        assert data == {"firstName": None, "lastName": None, "email": None, "phone": None,
                        "locale": customer.locale,
                        "defaultAddress": {"countryCodeV2": customer.country, "timeZone": customer.time_zone,
                                           "firstName": None}}
        order = env.sandbox.store.orders[-1]
        assert env.data("query($id: ID!) { order(id: $id) { email } }", {"id": order.gid})["order"] == \
            {"email": None}


def test_missing_scope_is_access_denied():
    for env in make_env(scopes=("read_orders",)):
        body = env.gql("{ customers(first: 1) { nodes { id } } }").json()
        (error,) = body["errors"]
        assert error["message"] == \
            "Access denied for customers field. Required access: `read_customers` access scope."
        assert error["extensions"]["code"] == "ACCESS_DENIED"
        assert error["path"] == ["customers"]
        body = env.gql("{ orders(first: 1) { nodes { id customer { id } } } }").json()
        assert body["errors"][0]["extensions"]["code"] == "ACCESS_DENIED"
        assert body["errors"][0]["path"] == ["orders", "nodes", 0, "customer"]


def test_shop_is_chosen_by_host_then_header_and_tenants_are_isolated():
    shops = ["alpha-store.myshopify.com", "beta-store.myshopify.com"]
    for env in make_env(shops=shops):
        sandbox = env.sandbox
        beta_token = sandbox.install(CLIENT_ID, "beta-store.myshopify.com")["access_token"]
        alpha_token = sandbox.install(CLIENT_ID, "alpha-store.myshopify.com")["access_token"]
        q = "{ shop { myshopifyDomain } orders(first: 1) { nodes { id } } }"
        beta = env.data(q, token=beta_token, shop="beta-store.myshopify.com")
        assert beta["shop"]["myshopifyDomain"] == "beta-store.myshopify.com"
        assert beta["orders"]["nodes"][0]["id"] == sandbox.stores()["beta-store.myshopify.com"].orders[0].gid
        # a token only works on its own shop
        assert env.gql(q, token=beta_token, shop="alpha-store.myshopify.com").status_code == 401
        # loopback Host: the X-Shopify-Shop-Domain header names the shop
        answer = requests.post(f"{env.url}/admin/api/2025-01/graphql.json", json={"query": q}, timeout=TIMEOUT,
                               headers={"X-Shopify-Access-Token": alpha_token,
                                        "X-Shopify-Shop-Domain": "alpha-store.myshopify.com"})
        assert answer.json()["data"]["shop"]["myshopifyDomain"] == "alpha-store.myshopify.com"
        # unknown shop: 404
        assert env.gql(q, token=alpha_token, shop="nobody.myshopify.com").status_code == 404
        assert {o.id for o in sandbox.stores()[shops[0]].orders}.isdisjoint(
            o.id for o in sandbox.stores()[shops[1]].orders)


def test_single_shop_is_the_fallback_without_host_or_header(env):
    answer = requests.post(f"{env.url}/admin/api/2025-01/graphql.json", json={"query": "{ shop { name } }"},
                           headers={"X-Shopify-Access-Token": env.token}, timeout=TIMEOUT)
    assert answer.json()["data"]["shop"]["name"] == env.sandbox.store.shop.name
    assert CLIENT_SECRET not in answer.text


@pytest.mark.parametrize(("root", "sort_key", "attr"), [
    ("customers", "UPDATED_AT", "updated_at"), ("customers", "CREATED_AT", "created_at"),
    ("products", "UPDATED_AT", "updated_at"), ("orders", "PROCESSED_AT", "processed_at")])
def test_other_lists_filter_and_sort_like_orders(env, root, sort_key, attr):
    items = {"customers": env.sandbox.store.customers, "products": env.sandbox.store.products,
             "orders": env.sandbox.store.orders}[root]
    middle = sorted(getattr(i, attr) for i in items)[len(items) // 2]
    query = f"{attr}:>='{_iso(middle)}'" if attr != "processed_at" else f"processed_at:>={_iso(middle)}"
    document = (f"query($after: String, $q: String) {{ {root}(first: 7, after: $after, query: $q, "
                f"sortKey: {sort_key}) {{ pageInfo {{ hasNextPage endCursor }} nodes {{ id }} }} }}")
    ids, after = [], None
    while True:
        conn = env.data(document, {"after": after, "q": query})[root]
        ids += [n["id"] for n in conn["nodes"]]
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    assert ids == [i.gid for i in sorted(items, key=lambda i: (getattr(i, attr), i.id))
                   if getattr(i, attr) >= middle]
