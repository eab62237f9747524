"""python-amazon-sp-api's own clients, pointed at the sandbox, work unchanged (as the connector uses them).

The library builds the LWA URL from ``AccessTokenClient.scheme/host`` and the SP-API URL from
``client.endpoint``; both are redirected to the loopback sandbox, nothing else is altered.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sp_api.api import Messaging, OrdersV0, OrdersV20260101, Reports, Solicitations
from sp_api.auth import AccessTokenClient
from sp_api.base import (
    Marketplaces,
    SellingApiForbiddenException,
    SellingApiNotFoundException,
    SellingApiRequestThrottledException,
)

from sandbox.amazon.marketplaces import US
from tests.sandbox.amazon_support import NOW, amazon_env, make_env  # noqa: F401 - the env fixture


def _client(env, api_class, **kwargs):
    token_client = type("SandboxTokenClient", (AccessTokenClient,),
                        {"scheme": "http://", "host": env.sandbox.lwa_token_url.split("://")[1].split("/")[0]})
    client = api_class(Marketplaces.US, refresh_token=env.refresh_token, timeout=10,
                       credentials={"lwa_app_id": env.sandbox.client_id,
                                    "lwa_client_secret": env.sandbox.client_secret},
                       auth_token_client_class=token_client, **kwargs)
    client.endpoint = env.sandbox.url
    return client


def test_orders_v0_and_2026_clients_page_through_the_seeded_orders(env):
    since = (NOW - timedelta(days=40)).strftime("%Y-%m-%dT%H:%M:%SZ")
    expected = sorted((o for o in env.sandbox.orders_of(env.seller.seller_id)
                       if o.marketplace_id == US and NOW - timedelta(days=40) <= o.purchase_date
                       <= NOW - timedelta(minutes=2)), key=lambda o: (o.purchase_date, o.order_id))
    orders = _client(env, OrdersV0)
    seen, answer = [], orders.get_orders(CreatedAfter=since, MaxResultsPerPage=20)
    while True:
        seen += [o["AmazonOrderId"] for o in answer.payload["Orders"]]
        if not answer.next_token:
            break
        answer = orders.get_orders(NextToken=answer.next_token)
    assert seen == [o.order_id for o in expected]
    items = orders.get_order_items(expected[0].order_id).payload["OrderItems"]
    assert [i["OrderItemId"] for i in items] == [i.order_item_id for i in expected[0].items]

    new = _client(env, OrdersV20260101)
    seen, answer = [], new.search_orders(createdAfter=since, marketplaceIds=[US], maxResultsPerPage=20,
                                         includedData=["FULFILLMENT"])
    while True:
        seen += [o["orderId"] for o in answer.payload["orders"]]
        if not answer.next_token:  # the library lifts "pagination" out of the payload
            break
        answer = new.search_orders(paginationToken=answer.next_token)
    assert seen == [o.order_id for o in expected]


def test_solicitations_client_sends_once(env):
    order = env.sandbox.add_order(env.seller.seller_id, US, NOW - timedelta(hours=1), "AFN")
    env.sandbox.set_status(order.order_id, "Shipped", NOW - timedelta(minutes=10))
    env.clock.set(order.earliest_delivery_date + timedelta(days=5))  # the library logs in itself
    client = _client(env, Solicitations)
    actions = client.get_solicitation_actions_for_order(order.order_id, marketplaceIds=[US])
    assert [a["name"] for a in actions.payload["_links"]["actions"]] == ["productReviewAndSellerFeedback"]
    client.create_product_review_and_seller_feedback_solicitation(order.order_id, marketplaceIds=[US])
    with pytest.raises(SellingApiForbiddenException) as refused:
        client.create_product_review_and_seller_feedback_solicitation(order.order_id, marketplaceIds=[US])
    assert refused.value.code == 403
    assert [r.order_id for r in env.sandbox.solicitations.records] == [order.order_id]


def test_messaging_and_reports_clients(env):
    order = env.sandbox.add_order(env.seller.seller_id, US, NOW - timedelta(hours=1), "MFN")
    env.sandbox.set_status(order.order_id, "Shipped", NOW - timedelta(minutes=10))
    env.sandbox.add_feedback(order.order_id, 2, "Box was crushed", at=NOW - timedelta(minutes=5))
    env.sandbox.gzip_threshold = 0
    messaging = _client(env, Messaging)
    messaging.create_unexpected_problem(order.order_id, body={"text": "Your parcel is delayed by a day."})
    assert [(m.kind, m.order_id) for m in env.sandbox.messages.records] == [("unexpectedProblem", order.order_id)]
    reports = _client(env, Reports)
    report_id = reports.create_report(reportType="GET_SELLER_FEEDBACK_DATA",
                                      dataStartTime=(NOW - timedelta(days=1)).isoformat()).payload["reportId"]
    statuses = [reports.get_report(report_id).payload["processingStatus"] for _ in range(3)]
    assert statuses == ["IN_QUEUE", "IN_PROGRESS", "DONE"]
    document_id = reports.get_report(report_id).payload["reportDocumentId"]
    document = reports.get_report_document(document_id, download=True)
    assert document.payload["compressionAlgorithm"] == "GZIP"
    assert document.payload["document"].splitlines()[1] == (
        f"{NOW.month}/{NOW.day}/{NOW:%y}\t2\tBox was crushed\t\t\t\t\t{order.order_id}\t{order.buyer_email}")


def test_throttling_surfaces_as_the_librarys_exception():
    for env in make_env(rate_limits=True):
        client = _client(env, Solicitations)
        for _ in range(5):  # burst 5; the order is unknown, so each answer is a 404
            with pytest.raises(SellingApiNotFoundException):
                client.get_solicitation_actions_for_order("111-0000000-0000000", marketplaceIds=[US])
        with pytest.raises(SellingApiRequestThrottledException) as throttled:
            client.get_solicitation_actions_for_order("111-0000000-0000000", marketplaceIds=[US])
        assert throttled.value.code == 429
