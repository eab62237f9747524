"""discountCodeFreeShippingCreate in the sandbox, over real HTTP: validated against the schema (2025-01) and
Shopify's input rules, single-use codes unique per shop, read back as a DiscountCodeFreeShipping."""

from __future__ import annotations

import pytest

from tests.sandbox.shopify_support import make_env

FREE = """mutation($input: DiscountCodeFreeShippingInput!) {
  discountCodeFreeShippingCreate(freeShippingCodeDiscount: $input) {
    codeDiscountNode { id codeDiscount { ... on DiscountCodeFreeShipping { title status usageLimit
      appliesOncePerCustomer summary maximumShippingPrice { amount currencyCode } codes(first: 1) { nodes { code } } }
      ... on DiscountCodeBasic { title } } }
    userErrors { field message code extraInfo } } }"""
NODE = """query($id: ID!) { node(id: $id) { ... on DiscountCodeNode { codeDiscount {
  __typename ... on DiscountCodeFreeShipping { title endsAt } } } } }"""


@pytest.fixture()
def env():
    yield from make_env(customers=5, orders=10)


def _input(env, code="VIP-SHIP1", **extra):
    customer = env.sandbox.store.customers[0]
    return {"title": f"VIP {code}", "code": code, "startsAt": "2026-01-15T12:00:00Z",
            "endsAt": "2026-03-16T12:00:00Z", "usageLimit": 1, "appliesOncePerCustomer": True,
            "customerSelection": {"customers": {"add": [customer.gid]}}, "destination": {"all": True}, **extra}


def test_free_shipping_code_is_created_once_and_reads_back_as_free_shipping(env):
    result = env.data(FREE, {"input": _input(env)})["discountCodeFreeShippingCreate"]
    assert result["userErrors"] == []
    node = result["codeDiscountNode"]
    assert node["codeDiscount"] == {
        "title": "VIP VIP-SHIP1", "status": "ACTIVE", "usageLimit": 1, "appliesOncePerCustomer": True,
        "summary": "Free shipping on all products • For all countries • One use per customer",
        "maximumShippingPrice": None, "codes": {"nodes": [{"code": "VIP-SHIP1"}]}}
    again = env.data(NODE, {"id": node["id"]})["node"]["codeDiscount"]
    assert again == {"__typename": "DiscountCodeFreeShipping", "title": "VIP VIP-SHIP1",
                     "endsAt": "2026-03-16T12:00:00Z"}
    (stored,) = env.sandbox.shop_state().discounts.values()
    customer = env.sandbox.store.customers[0]
    assert (stored.free_shipping, stored.countries, stored.usage_limit, stored.customer_ids, stored.percentage,
            stored.amount_cents) == (True, None, 1, (customer.gid,), None, None)
    # Codes are unique per shop, whatever the kind and the case.
    taken = env.data(FREE, {"input": _input(env, code="vip-ship1")})["discountCodeFreeShippingCreate"]
    assert taken["codeDiscountNode"] is None
    assert taken["userErrors"] == [{"field": ["freeShippingCodeDiscount", "code"], "code": "TAKEN",
                                    "extraInfo": None,
                                    "message": "Code must be unique. Please try a different code."}]
    # Some countries, rates up to 20.00 only.
    some = _input(env, code="VIP-SHIP2", destination={"countries": {"add": ["DE", "FR"]}},
                  maximumShippingPrice="20.00")
    made = env.data(FREE, {"input": some})["discountCodeFreeShippingCreate"]
    assert made["userErrors"] == []
    assert made["codeDiscountNode"]["codeDiscount"]["maximumShippingPrice"]["amount"] == "20.00"
    assert made["codeDiscountNode"]["codeDiscount"]["summary"] == (
        "Free shipping on all products • For 2 countries • Applies to shipping rates under 20.00"
        " • One use per customer")
    assert [d.countries for d in env.sandbox.shop_state().discounts.values()] == [None, ("DE", "FR")]


def test_free_shipping_input_errors(env):
    bad = _input(env, code="", destination={"all": True, "countries": {"add": ["DE"]}}, usageLimit=0,
                 maximumShippingPrice="-1")
    del bad["title"]
    errors = env.data(FREE, {"input": bad})["discountCodeFreeShippingCreate"]["userErrors"]
    assert [(e["field"], e["code"]) for e in errors] == [
        (["freeShippingCodeDiscount", "code"], "BLANK"),
        (["freeShippingCodeDiscount", "title"], "BLANK"),
        (["freeShippingCodeDiscount", "destination"], "INVALID"),
        (["freeShippingCodeDiscount", "maximumShippingPrice"], "GREATER_THAN_OR_EQUAL_TO"),
        (["freeShippingCodeDiscount", "usageLimit"], "GREATER_THAN")]
    nowhere = _input(env, destination=None)
    errors = env.data(FREE, {"input": nowhere})["discountCodeFreeShippingCreate"]["userErrors"]
    assert [(e["field"], e["code"]) for e in errors] == [(["freeShippingCodeDiscount", "destination"], "BLANK")]
    empty = _input(env, destination={"countries": {"add": []}})
    errors = env.data(FREE, {"input": empty})["discountCodeFreeShippingCreate"]["userErrors"]
    assert [(e["field"], e["code"]) for e in errors] == [
        (["freeShippingCodeDiscount", "destination", "countries", "add"], "BLANK")]
    unknown = _input(env, customerSelection={"customers": {"add": ["gid://shopify/Customer/999999"]}})
    errors = env.data(FREE, {"input": unknown})["discountCodeFreeShippingCreate"]["userErrors"]
    assert [(e["field"], e["code"]) for e in errors] == [
        (["freeShippingCodeDiscount", "customerSelection", "customers", "add"], "INVALID")]
    assert env.sandbox.shop_state().discounts == {}


def test_the_schema_refuses_what_a_free_shipping_input_cannot_hold(env):
    # customerGets belongs to the basic input; a country code must be a CountryCode.
    for wrong in (_input(env, customerGets={"value": {"percentage": 0.1}}),
                  _input(env, destination={"countries": {"add": ["ATLANTIS"]}})):
        body = env.gql(FREE, {"input": wrong}).json()
        assert body["errors"] and body.get("data") is None, body
    assert env.sandbox.shop_state().discounts == {}


def test_free_shipping_codes_need_write_discounts():
    for env in make_env(customers=5, orders=10, scopes=("read_orders", "read_customers")):
        body = env.gql(FREE, {"input": _input(env)}).json()
        assert body["errors"][0]["extensions"]["code"] == "ACCESS_DENIED"
        assert body["errors"][0]["message"] == ("Access denied for discountCodeFreeShippingCreate field. "
                                                "Required access: `write_discounts` access scope.")
        assert body["data"] == {"discountCodeFreeShippingCreate": None}
