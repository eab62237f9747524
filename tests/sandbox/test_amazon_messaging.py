"""Messaging: the actions an order allows, the models' text/attachment limits, and the message log."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sandbox.amazon.marketplaces import DE, US
from tests.sandbox.amazon_support import NOW, amazon_env  # noqa: F401 - the env fixture


@pytest.fixture
def shipped(env):
    """A shipped MFN order in the US marketplace."""
    order = env.sandbox.add_order(env.seller.seller_id, US, NOW - timedelta(hours=1), "MFN")
    env.sandbox.set_status(order.order_id, "Shipped", NOW - timedelta(minutes=30))
    return order


def _send(env, order, kind, body):
    return env.post(f"/messaging/v1/orders/{order.order_id}/messages/{kind}",
                    params={"marketplaceIds": order.marketplace_id}, json=body)


def test_actions_and_attributes(env, shipped):
    answer = env.get(f"/messaging/v1/orders/{shipped.order_id}", params={"marketplaceIds": US})
    assert answer.status_code == 200
    names = [a["name"] for a in answer.json()["_links"]["actions"]]
    assert names == ["legalDisclosure", "confirmDeliveryDetails", "confirmOrderDetails", "unexpectedProblem",
                     "warranty"]
    assert [e["payload"]["name"] for e in answer.json()["_embedded"]["actions"]] == names
    attributes = env.get(f"/messaging/v1/orders/{shipped.order_id}/attributes", params={"marketplaceIds": US})
    assert attributes.json() == {"buyer": {"locale": "en-US"}}
    eu = env.sandbox.add_order(env.seller.seller_id, DE, NOW - timedelta(hours=1), "AFN")
    env.sandbox.set_status(eu.order_id, "Shipped", NOW - timedelta(minutes=30))
    eu_names = [a["name"] for a in env.get(f"/messaging/v1/orders/{eu.order_id}",
                                           params={"marketplaceIds": DE}).json()["_links"]["actions"]]
    assert eu_names == ["legalDisclosure", "unexpectedProblem", "warranty", "invoice"]


@pytest.mark.parametrize("kind, limit", [("unexpectedProblem", 2000), ("confirmDeliveryDetails", 2000),
                                         ("confirmOrderDetails", 2000)])
def test_text_length_limits_from_the_model(env, shipped, kind, limit):
    assert _send(env, shipped, kind, {"text": "x" * limit}).status_code == 201
    too_long = _send(env, shipped, kind, {"text": "x" * (limit + 1)})
    assert too_long.status_code == 400
    assert too_long.json()["errors"][0]["code"] == "InvalidInput"
    assert str(limit) in too_long.json()["errors"][0]["details"]
    assert _send(env, shipped, kind, {"text": ""}).status_code == 400
    assert _send(env, shipped, kind, {}).status_code == 400
    sent = [m for m in env.sandbox.messages.records if m.order_id == shipped.order_id]
    assert [(m.kind, len(m.text)) for m in sent] == [(kind, limit)]


def test_customization_details_limit_is_800_and_attachments_at_most_five(env, shipped):
    env.sandbox.set_status(shipped.order_id, "Shipped", NOW)  # customization is not offered: 403 after validation
    assert _send(env, shipped, "confirmCustomizationDetails", {"text": "x" * 801}).status_code == 400
    assert _send(env, shipped, "confirmCustomizationDetails", {"text": "x" * 800}).status_code == 403
    six = [{"uploadDestinationId": f"u{i}", "fileName": f"f{i}.pdf"} for i in range(6)]
    assert _send(env, shipped, "warranty", {"attachments": six}).status_code == 400
    assert _send(env, shipped, "warranty", {"attachments": []}).status_code == 400
    assert _send(env, shipped, "warranty", {"attachments": six[:5],
                                            "coverageStartDate": "2026-03-01T00:00:00Z"}).status_code == 201
    assert _send(env, shipped, "warranty", {"attachments": [{"fileName": "x.pdf"}]}).status_code == 400


def test_canceled_orders_allow_no_messages(env, shipped):
    env.sandbox.cancel_order(shipped.order_id, NOW)
    answer = env.get(f"/messaging/v1/orders/{shipped.order_id}", params={"marketplaceIds": US})
    assert answer.json()["_links"]["actions"] == []
    refused = _send(env, shipped, "unexpectedProblem", {"text": "Sorry, your parcel is late."})
    assert refused.status_code == 403 and refused.json()["errors"][0]["code"] == "Unauthorized"
    assert env.sandbox.messages.records == []


def test_malformed_body_is_400(env, shipped):
    answer = env.post(f"/messaging/v1/orders/{shipped.order_id}/messages/unexpectedProblem",
                      params={"marketplaceIds": US}, data=b"{not json", headers={"content-type": "application/json"})
    assert answer.status_code == 400
