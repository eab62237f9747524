"""Contract tests against the official SP-API models (read from tests/paths.py:AMAZON_SPECS only).

(a) every ``x-amzn-api-sandbox`` static case of the implemented models, replayed over HTTP in static mode;
(b) the sandbox's dynamic answers validate against the models' response schemas (jsonschema, plus a
    strict walk that rejects properties the model does not define);
(c) the hard-coded usage plans and the served routes match the models.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import jsonschema
import pytest
import requests

from sandbox.amazon.app import _routes
from sandbox.amazon.marketplaces import DE, US
from sandbox.amazon.ratelimit import FALLBACK_RATE, RATE_TABLE
from tests.paths import AMAZON_SPECS
from tests.sandbox.amazon_support import NOW, TIMEOUT, Env, amazon_env, make_env  # noqa: F401 - env fixture

MODELS = ["solicitations", "messaging", "ordersV0", "orders_2026-01-01", "reports_2021-06-30", "tokens_2021-03-01"]
STATIC_HOST = "sandbox.sellingpartnerapi-na.amazon.com"

pytestmark = pytest.mark.skipif(not AMAZON_SPECS.exists(), reason="official SP-API models not available")


def _model(name: str) -> dict[str, Any]:
    return json.loads((AMAZON_SPECS / f"{name}.json").read_text())


def _operations(model: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, ops in model["paths"].items():
        for method, op in ops.items():
            if isinstance(op, dict) and "responses" in op:
                yield path, method.upper(), op


def _static_cases() -> list[tuple[str, str, str, dict[str, Any], int, dict[str, Any]]]:
    cases = []
    for name in MODELS:
        for path, method, op in _operations(_model(name)):
            kinds = {p["name"]: (p["in"], p.get("type")) for p in op.get("parameters", [])}
            for code, answer in op["responses"].items():
                for index, case in enumerate(answer.get("x-amzn-api-sandbox", {}).get("static", [])):
                    case_id = f"{name}.{op['operationId']}.{code}.{index}"
                    cases.append((case_id, method, path, kinds, int(code), case))
    return cases


STATIC_CASES = _static_cases() if AMAZON_SPECS.exists() else []


@pytest.fixture(scope="module")
def static_env() -> Iterator[Env]:
    """One sandbox with every implemented model's static cases loaded."""
    for env in make_env(orders=50):
        for name in MODELS:
            env.sandbox.load_static_cases(_model(name))
        yield env


def _first_with_same_parameters(method: str, path: str, case: dict[str, Any]) -> dict[str, Any]:
    """Return the model's first case with identical parameters (Amazon answers that one)."""
    for _, m, p, _, _, other in STATIC_CASES:
        if (m, p) == (method, path) and other["request"]["parameters"] == case["request"]["parameters"]:
            return other
    return case


@pytest.mark.parametrize("case_id, method, path, kinds, status, case", STATIC_CASES,
                         ids=[c[0] for c in STATIC_CASES])
def test_static_sandbox_case(static_env, case_id, method, path, kinds, status, case):
    params = {k: v["value"] for k, v in case["request"]["parameters"].items()}
    url_path = re.sub(r"\{(\w+)\}", lambda m: str(params.get(m.group(1), "MISSING_PATH_VALUE")), path)
    query = {k: (",".join(v) if isinstance(v, list) else str(v).lower() if isinstance(v, bool) else str(v))
             for k, v in params.items() if kinds.get(k, ("query",))[0] == "query"}
    body = next((v for k, v in params.items() if kinds.get(k, ("",))[0] == "body"), None)
    answer = static_env.call(method, url_path, params=query, json=body, headers={"Host": STATIC_HOST})
    expected = _first_with_same_parameters(method, path, case)
    expected_status = next(int(code) for code, _ in [(c[4], c) for c in STATIC_CASES if c[5] is expected])
    assert answer.status_code == expected_status, answer.text
    assert answer.headers["x-amzn-RequestId"]
    if expected.get("response") is None or expected_status == 204:
        assert answer.content in (b"", b"null", b"{}")
    else:
        assert answer.json() == expected["response"]


def test_static_mode_needs_an_access_token_and_a_matching_case(static_env):
    denied = requests.get(static_env.sandbox.url + "/solicitations/v1/orders/123-1234567-1234567",
                          params={"marketplaceIds": US}, headers={"Host": STATIC_HOST}, timeout=TIMEOUT)
    assert denied.status_code == 403
    unmatched = static_env.get("/solicitations/v1/orders/999-9999999-9999999", params={"marketplaceIds": US},
                               headers={"Host": STATIC_HOST})
    assert unmatched.status_code == 400


# ---------------------------------------------------------------- (b) dynamic answers vs schemas


def _resolve(schema: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """Follow ``#/definitions/X`` references (Swagger 2.0) until a concrete schema is reached."""
    while "$ref" in schema:
        schema = definitions[schema["$ref"].split("/")[-1]]
    return schema


def _strict(value: Any, schema: dict[str, Any], definitions: dict[str, Any], where: str) -> list[str]:
    """List the properties present in ``value`` that the model does not define."""
    schema = _resolve(schema, definitions)
    problems = []
    if isinstance(value, dict) and "properties" in schema:
        for key, item in value.items():
            if key not in schema["properties"]:
                problems.append(f"{where}.{key}")
            else:
                problems += _strict(item, schema["properties"][key], definitions, f"{where}.{key}")
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            problems += _strict(item, schema["items"], definitions, f"{where}[{i}]")
    return problems


def _check(model_name: str, path: str, method: str, answer: requests.Response) -> None:
    model = _model(model_name)
    op = model["paths"][path][method.lower()]
    response = op["responses"][str(answer.status_code)]
    schema = {**response["schema"], "definitions": model["definitions"]}
    body = answer.json()
    jsonschema.Draft4Validator(schema).validate(body)
    assert _strict(body, response["schema"], model["definitions"], "$") == []


@pytest.fixture
def shipped(env):
    """A shipped MFN US order inside its solicitation window (clock moved there)."""
    order = env.sandbox.add_order(env.seller.seller_id, US, NOW - timedelta(hours=1), "MFN")
    env.sandbox.set_status(order.order_id, "Shipped", NOW)
    env.at(order.earliest_delivery_date + timedelta(days=6))
    return order


def test_orders_answers_match_the_models(env, shipped):
    every = ",".join(["BUYER", "RECIPIENT", "PROCEEDS", "EXPENSE", "PROMOTION", "CANCELLATION", "FULFILLMENT",
                      "PACKAGES", "TAX", "PAYMENT", "FULFILLMENT_ORDERS"])
    since = (NOW - timedelta(days=130)).strftime("%Y-%m-%dT%H:%M:%SZ")
    search = env.get("/orders/2026-01-01/orders", params={"createdAfter": since, "includedData": every,
                                                          "maxResultsPerPage": 100})
    assert len(search.json()["orders"]) == 100
    _check("orders_2026-01-01", "/orders/2026-01-01/orders", "GET", search)
    one = env.get(f"/orders/2026-01-01/orders/{shipped.order_id}", params={"includedData": every})
    _check("orders_2026-01-01", "/orders/2026-01-01/orders/{orderId}", "GET", one)
    bad = env.get("/orders/2026-01-01/orders", params={"createdAfter": since, "lastUpdatedAfter": since})
    _check("orders_2026-01-01", "/orders/2026-01-01/orders", "GET", bad)
    v0 = env.get("/orders/v0/orders", params={"CreatedAfter": since, "MarketplaceIds": f"{US},{DE}"})
    _check("ordersV0", "/orders/v0/orders", "GET", v0)
    for suffix, path in [("", "/orders/v0/orders/{orderId}"), ("/orderItems", "/orders/v0/orders/{orderId}/orderItems"),
                         ("/buyerInfo", "/orders/v0/orders/{orderId}/buyerInfo"),
                         ("/address", "/orders/v0/orders/{orderId}/address")]:
        _check("ordersV0", path, "GET", env.get(f"/orders/v0/orders/{shipped.order_id}{suffix}"))
    _check("ordersV0", "/orders/v0/orders/{orderId}", "GET", env.get("/orders/v0/orders/111-0000000-0000000"))


def test_solicitation_and_messaging_answers_match_the_models(env, shipped):
    base = f"/solicitations/v1/orders/{shipped.order_id}"
    post = base + "/solicitations/productReviewAndSellerFeedback"
    _check("solicitations", "/solicitations/v1/orders/{amazonOrderId}", "GET",
           env.get(base, params={"marketplaceIds": US}))
    created = env.post(post, params={"marketplaceIds": US})
    assert created.status_code == 201
    _check("solicitations", "/solicitations/v1/orders/{amazonOrderId}/solicitations/productReviewAndSellerFeedback",
           "POST", created)
    again = env.post(post, params={"marketplaceIds": US})
    _check("solicitations", "/solicitations/v1/orders/{amazonOrderId}/solicitations/productReviewAndSellerFeedback",
           "POST", again)
    _check("solicitations", "/solicitations/v1/orders/{amazonOrderId}", "GET", env.get(base))  # 400
    mbase = f"/messaging/v1/orders/{shipped.order_id}"
    _check("messaging", "/messaging/v1/orders/{amazonOrderId}", "GET", env.get(mbase, params={"marketplaceIds": US}))
    _check("messaging", "/messaging/v1/orders/{amazonOrderId}/attributes", "GET",
           env.get(mbase + "/attributes", params={"marketplaceIds": US}))
    sent = env.post(mbase + "/messages/unexpectedProblem", params={"marketplaceIds": US}, json={"text": "Delay"})
    assert sent.status_code == 201
    _check("messaging", "/messaging/v1/orders/{amazonOrderId}/messages/unexpectedProblem", "POST", sent)
    too_long = env.post(mbase + "/messages/unexpectedProblem", params={"marketplaceIds": US}, json={"text": "x" * 2001})
    _check("messaging", "/messaging/v1/orders/{amazonOrderId}/messages/unexpectedProblem", "POST", too_long)


def test_reports_and_tokens_answers_match_the_models(env, shipped):
    env.sandbox.add_feedback(shipped.order_id, 1, "Broken", at=env.clock.now() - timedelta(hours=1))
    created = env.post("/reports/2021-06-30/reports", json={"reportType": "GET_SELLER_FEEDBACK_DATA",
                                                            "marketplaceIds": [US]})
    _check("reports_2021-06-30", "/reports/2021-06-30/reports", "POST", created)
    report_id = created.json()["reportId"]
    for _ in range(3):
        polled = env.get(f"/reports/2021-06-30/reports/{report_id}")
        _check("reports_2021-06-30", "/reports/2021-06-30/reports/{reportId}", "GET", polled)
    document = env.get(f"/reports/2021-06-30/documents/{polled.json()['reportDocumentId']}")
    _check("reports_2021-06-30", "/reports/2021-06-30/documents/{reportDocumentId}", "GET", document)
    listed = env.get("/reports/2021-06-30/reports", params={"reportTypes": "GET_SELLER_FEEDBACK_DATA"})
    _check("reports_2021-06-30", "/reports/2021-06-30/reports", "GET", listed)
    rdt = env.post("/tokens/2021-03-01/restrictedDataToken", json={"restrictedResources": [
        {"method": "GET", "path": f"/orders/v0/orders/{shipped.order_id}/address"}]})
    _check("tokens_2021-03-01", "/tokens/2021-03-01/restrictedDataToken", "POST", rdt)
    rdt_token = rdt.json()["restrictedDataToken"]
    assert env.get(f"/orders/v0/orders/{shipped.order_id}/address", token=rdt_token).status_code == 200
    assert env.get(f"/orders/v0/orders/{shipped.order_id}/buyerInfo", token=rdt_token).status_code == 403
    bad = env.post("/tokens/2021-03-01/restrictedDataToken", json={"restrictedResources": []})
    _check("tokens_2021-03-01", "/tokens/2021-03-01/restrictedDataToken", "POST", bad)


# ---------------------------------------------------------------- (c) usage plans and routes


def _usage_plan(description: str) -> tuple[float, int] | None:
    match = re.search(r"\|\s*Rate \(requests per second\)\s*\|\s*Burst\s*\|\s*\n\|[-| ]+\|\s*\n\|\s*([\d.]+)\s*\|"
                      r"\s*(\d+)\s*\|", description)
    return (float(match.group(1)), int(match.group(2))) if match else None


def test_rate_table_matches_the_models_usage_plans():
    plans = {}
    for name in MODELS:
        for _, _, op in _operations(_model(name)):
            plans[f"{name}.{op['operationId']}"] = _usage_plan(op.get("description", ""))
    for key, (rate, burst) in RATE_TABLE.items():
        assert plans[key] == (rate, burst), key
    for _, _, key, _ in _routes():
        assert key in RATE_TABLE or (plans[key] is None and FALLBACK_RATE == (1.0, 5)), key


def test_every_served_route_is_an_operation_of_its_model():
    for method, path, key, _ in _routes():
        name, operation_id = key.rsplit(".", 1)
        model_path = re.sub(r"<(\w+)>", r"{\1}", path)
        op = _model(name)["paths"][model_path][method.lower()]
        assert op["operationId"] == operation_id
