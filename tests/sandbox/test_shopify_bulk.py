"""Bulk operations: status stages by polling, JSONL equal to the seeded data, one at a time, finish webhook."""

from __future__ import annotations

import json

import pytest
import requests

from sandbox.shopify.webhooks import sign
from tests.sandbox.shopify_support import CLIENT_SECRET, TIMEOUT, make_env, start_receiver

RUN = """mutation($q: String!) { bulkOperationRunQuery(query: $q) {
  bulkOperation { id status } userErrors { field message code } } }"""
CURRENT = "{ currentBulkOperation { id status errorCode objectCount rootObjectCount fileSize url partialDataUrl } }"
BY_ID = "query($id: ID!) { node(id: $id) { ... on BulkOperation { id status objectCount url } } }"
ORDERS_WITH_LINES = """{ orders { edges { node { id name updatedAt
  lineItems { edges { node { id sku quantity } } } } } } }"""


@pytest.fixture()
def env():
    yield from make_env(customers=40, orders=150)


def _run(env, query):
    return env.data(RUN, {"q": query})["bulkOperationRunQuery"]


def test_status_moves_created_running_completed_and_jsonl_matches_the_store(env):
    receiver = start_receiver()
    try:
        env.data("""mutation($url: URL!) { webhookSubscriptionCreate(topic: BULK_OPERATIONS_FINISH,
            webhookSubscription: {callbackUrl: $url, format: JSON}) { userErrors { message } } }""",
                 {"url": receiver.url})
        started = _run(env, ORDERS_WITH_LINES)
        assert started["userErrors"] == []
        assert started["bulkOperation"]["status"] == "CREATED"
        op_id = started["bulkOperation"]["id"]
        assert env.data(CURRENT)["currentBulkOperation"]["status"] == "RUNNING"
        done = env.data(BY_ID, {"id": op_id})["node"]
        assert done["status"] == "COMPLETED"

        store = env.sandbox.store
        expected = []
        for order in sorted(store.orders, key=lambda o: o.id):
            expected.append({"id": order.gid, "name": order.name,
                             "updatedAt": order.updated_at.isoformat().replace("+00:00", "Z")})
            expected += [{"id": li.gid, "sku": li.sku, "quantity": li.quantity, "__parentId": order.gid}
                         for li in sorted(order.line_items, key=lambda li: li.id)]
        body = requests.get(done["url"], timeout=TIMEOUT).content
        lines = [json.loads(line) for line in body.decode().splitlines()]
        assert lines == expected
        current = env.data(CURRENT)["currentBulkOperation"]
        assert current["objectCount"] == str(len(expected))
        assert current["rootObjectCount"] == str(len(store.orders))
        assert current["fileSize"] == str(len(body))
        assert current["errorCode"] is None and current["partialDataUrl"] is None

        (hook,) = receiver.requests
        assert hook["headers"]["X-Shopify-Topic"] == "bulk_operations/finish"
        assert hook["headers"]["X-Shopify-Hmac-Sha256"] == sign(hook["body"], CLIENT_SECRET)
        payload = json.loads(hook["body"])
        assert payload["admin_graphql_api_id"] == op_id
        assert (payload["status"], payload["type"], payload["error_code"]) == ("completed", "query", None)
    finally:
        receiver.server.stop()


def test_nested_connections_two_deep_carry_parent_ids(env):
    _run(env, "{ products { edges { node { id title variants { edges { node { id sku } } } } } } }")
    env.sandbox.finish_bulk_operations("test-client")
    url = env.data(CURRENT)["currentBulkOperation"]["url"]
    lines = [json.loads(line) for line in requests.get(url, timeout=TIMEOUT).text.splitlines()]
    store = env.sandbox.store
    expected = []
    for product in sorted(store.products, key=lambda p: p.id):
        expected.append({"id": product.gid, "title": product.title})
        expected += [{"id": v.gid, "sku": v.sku, "__parentId": product.gid}
                     for v in sorted(product.variants, key=lambda v: v.position)]
    assert lines == expected


def test_parent_id_is_supplied_even_when_the_parent_omits_id(env):
    _run(env, "{ products { nodes { title variants { nodes { sku } } } } }")
    env.sandbox.finish_bulk_operations("test-client")
    url = env.data(CURRENT)["currentBulkOperation"]["url"]
    lines = [json.loads(line) for line in requests.get(url, timeout=TIMEOUT).text.splitlines()]
    first = env.sandbox.store.products[0]
    assert lines[0] == {"title": first.title}
    assert lines[1] == {"sku": first.variants[0].sku, "__parentId": first.gid}


def test_second_bulk_query_while_one_runs_is_a_user_error(env):
    first = _run(env, "{ customers { edges { node { id } } } }")
    assert first["userErrors"] == []
    second = _run(env, "{ products { edges { node { id } } } }")
    assert second["bulkOperation"] is None
    (error,) = second["userErrors"]
    assert error["code"] == "OPERATION_IN_PROGRESS"
    assert first["bulkOperation"]["id"] in error["message"]
    env.sandbox.finish_bulk_operations("test-client")
    assert _run(env, "{ products { edges { node { id } } } }")["userErrors"] == []


@pytest.mark.parametrize(("query", "message"), [
    ("{ shop { name } }", "Bulk queries must contain at least one connection."),
    ("{ customers { edges { node { id orders { edges { node { id lineItems { edges { node { id } } } } } } } } } }",
     "Bulk queries cannot contain connections with a nesting depth greater than 2."),
    ("{ orders { edges { node { id nope } } } }", "Invalid bulk query: Cannot query field 'nope' on type 'Order'."),
])
def test_invalid_bulk_queries_are_user_errors(env, query, message):
    result = _run(env, query)
    assert result["bulkOperation"] is None
    assert result["userErrors"] == [{"field": ["query"], "message": message, "code": "INVALID"}]


def test_empty_result_has_no_url(env):
    _run(env, '{ orders(query: "id:<0") { edges { node { id } } } }')
    env.sandbox.finish_bulk_operations("test-client")
    current = env.data(CURRENT)["currentBulkOperation"]
    assert (current["status"], current["objectCount"], current["url"]) == ("COMPLETED", "0", None)


def test_bulk_respects_the_60_day_rule():
    for env in make_env(customers=30, orders=120, scopes=("read_orders",)):
        _run(env, "{ orders { edges { node { id } } } }")
        env.sandbox.finish_bulk_operations("test-client")
        url = env.data(CURRENT)["currentBulkOperation"]["url"]
        ids = [json.loads(line)["id"] for line in requests.get(url, timeout=TIMEOUT).text.splitlines()]
        cutoff = env.clock.now().timestamp() - 60 * 86400
        assert ids == [o.gid for o in sorted(env.sandbox.store.orders, key=lambda o: o.id)
                       if o.created_at.timestamp() >= cutoff]


def test_bulk_query_touching_a_field_without_scope_fails_with_access_denied():
    for env in make_env(customers=10, orders=30, scopes=("read_orders", "read_all_orders")):
        assert _run(env, "{ orders { edges { node { id customer { id } } } } }")["userErrors"] == []
        env.sandbox.finish_bulk_operations("test-client")
        current = env.data(CURRENT)["currentBulkOperation"]
        assert (current["status"], current["errorCode"], current["url"]) == ("FAILED", "ACCESS_DENIED", None)
