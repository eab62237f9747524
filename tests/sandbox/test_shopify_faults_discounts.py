"""Fault injection at a seeded rate, and discountCodeBasicCreate (single-use codes, unique per shop)."""

from __future__ import annotations

import random

import pytest
import requests

from tests.sandbox.shopify_support import SHOP, TIMEOUT, make_env

QUERY = "{ shop { name } }"
DISCOUNT = """mutation($input: DiscountCodeBasicInput!) { discountCodeBasicCreate(basicCodeDiscount: $input) {
  codeDiscountNode { id codeDiscount { ... on DiscountCodeBasic { title status usageLimit appliesOncePerCustomer
    summary codes(first: 1) { nodes { code } } } } }
  userErrors { field message code extraInfo } } }"""


@pytest.fixture()
def env():
    yield from make_env(customers=10, orders=30)


def _input(env, code="BACK-ABC123", **extra):
    customer = env.sandbox.store.customers[0]
    return {"title": f"Reorder {code}", "code": code, "startsAt": "2026-01-15T12:00:00Z", "usageLimit": 1,
            "appliesOncePerCustomer": True, "customerSelection": {"customers": {"add": [customer.gid]}},
            "customerGets": {"value": {"percentage": 0.1}, "items": {"all": True}}, **extra}


def test_fault_rate_and_kinds_follow_the_seed(env):
    env.sandbox.set_faults(0.3, ["500", "503", "429"], seed=5)
    rng = random.Random(5)
    expected = []
    for _ in range(120):
        expected.append(rng.choice(["500", "503", "429"]) if rng.random() < 0.3 else "200")
    seen = [str(env.gql(QUERY).status_code) for _ in range(120)]
    assert seen == expected
    counts = env.sandbox.faults.counts
    assert sum(counts.values()) == sum(1 for s in seen if s != "200")
    assert 20 <= sum(counts.values()) <= 55
    env.sandbox.set_faults(0.0)
    assert env.gql(QUERY).status_code == 200


def test_429_malformed_drop_and_slow(env):
    env.sandbox.set_faults(1.0, ["429"])
    answer = env.gql(QUERY)
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "1"
    env.sandbox.set_faults(1.0, ["malformed"])
    answer = env.gql(QUERY)
    assert answer.status_code == 200
    with pytest.raises(ValueError):
        answer.json()
    env.sandbox.set_faults(1.0, ["drop"])
    with pytest.raises(requests.ConnectionError):
        env.gql(QUERY)
    env.sandbox.set_faults(1.0, ["slow"], slow_seconds=0.6)
    with pytest.raises(requests.Timeout):
        requests.post(f"{env.url}/admin/api/2025-01/graphql.json", json={"query": QUERY}, timeout=0.2,
                      headers={"X-Shopify-Access-Token": env.token, "Host": SHOP})
    # control routes stay reachable while faults are on
    state = requests.get(f"{env.url}/__sandbox/state", timeout=TIMEOUT)
    assert state.status_code == 200
    set_off = requests.post(f"{env.url}/__sandbox/faults", json={"rate": 0}, timeout=TIMEOUT)
    assert set_off.json()["rate"] == 0.0
    assert env.gql(QUERY).status_code == 200


def test_single_use_code_is_created_and_codes_are_unique(env):
    result = env.data(DISCOUNT, {"input": _input(env)})["discountCodeBasicCreate"]
    assert result["userErrors"] == []
    node = result["codeDiscountNode"]
    assert node["id"].startswith("gid://shopify/DiscountCodeNode/")
    assert node["codeDiscount"] == {"title": "Reorder BACK-ABC123", "status": "ACTIVE", "usageLimit": 1,
                                    "appliesOncePerCustomer": True,
                                    "summary": "10% off entire order • One use per customer",
                                    "codes": {"nodes": [{"code": "BACK-ABC123"}]}}
    duplicate = env.data(DISCOUNT, {"input": _input(env, code="back-abc123")})["discountCodeBasicCreate"]
    assert duplicate["codeDiscountNode"] is None
    assert duplicate["userErrors"] == [{"field": ["basicCodeDiscount", "code"], "code": "TAKEN", "extraInfo": None,
                                        "message": "Code must be unique. Please try a different code."}]
    fixed = _input(env, code="FIVE-OFF", customerGets={"value": {"discountAmount": {
        "amount": "5.00", "appliesOnEachItem": False}}, "items": {"all": True}})
    assert env.data(DISCOUNT, {"input": fixed})["discountCodeBasicCreate"]["userErrors"] == []


def test_discount_input_errors(env):
    bad = _input(env, code="", customerGets={"value": {"percentage": 1.5}, "items": {"all": True}})
    errors = env.data(DISCOUNT, {"input": bad})["discountCodeBasicCreate"]["userErrors"]
    assert [(e["field"], e["code"]) for e in errors] == [
        (["basicCodeDiscount", "code"], "BLANK"),
        (["basicCodeDiscount", "customerGets", "value", "percentage"], "VALUE_OUTSIDE_RANGE")]
    many = _input(env, code="MANY", customerSelection={"customers": {"add": [
        f"gid://shopify/Customer/{n}" for n in range(251)]}})
    body = env.gql(DISCOUNT, {"input": many}).json()
    assert body["errors"][0]["extensions"]["code"] == "MAX_INPUT_SIZE_EXCEEDED"


def test_discounts_need_write_discounts():
    for env in make_env(customers=10, orders=30, scopes=("read_orders", "read_customers")):
        body = env.gql(DISCOUNT, {"input": _input(env)}).json()
        assert body["errors"][0]["extensions"]["code"] == "ACCESS_DENIED"
        assert body["errors"][0]["message"] == ("Access denied for discountCodeBasicCreate field. "
                                                "Required access: `write_discounts` access scope.")
        assert body["data"] == {"discountCodeBasicCreate": None}
