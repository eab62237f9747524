"""Reports: lifecycle, document download (plain and gzip), and the localised seller feedback report."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from datetime import timedelta

import pytest
import requests

from sandbox.amazon.marketplaces import DE, JP, US
from tests.sandbox.amazon_support import NOW, TIMEOUT, Env, amazon_env, make_env  # noqa: F401 - env fixture

REPORTS = "/reports/2021-06-30/reports"
START = NOW + timedelta(days=1)


def _feedback(env, marketplace, ratings):
    """Add feedback dated NOW+2d (+1 h per entry) for fresh orders; return the orders.

    The yes/no answers are (late: no, as described: yes, service: unanswered).
    """
    orders = []
    for i, (rating, text) in enumerate(ratings):
        order = env.sandbox.add_order(env.seller.seller_id, marketplace, NOW - timedelta(hours=2))
        env.sandbox.add_feedback(order.order_id, rating, text, at=NOW + timedelta(days=2, hours=i),
                                 answers=(False, True, None))
        orders.append(order)
    env.at(NOW + timedelta(days=3))
    return orders


def _create(env, marketplace, start=START):
    answer = env.post(REPORTS, json={"reportType": "GET_SELLER_FEEDBACK_DATA", "marketplaceIds": [marketplace],
                                     "dataStartTime": start.strftime("%Y-%m-%dT%H:%M:%SZ")})
    assert answer.status_code == 202, answer.text
    return answer.json()["reportId"]


def _poll_until_final(env, report_id):
    statuses = []
    for _ in range(5):
        body = env.get(f"{REPORTS}/{report_id}").json()
        statuses.append(body["processingStatus"])
        if body["processingStatus"] in ("DONE", "CANCELLED", "FATAL"):
            return statuses, body
    raise AssertionError(statuses)


def _download(env, document_id):
    meta = env.get(f"/reports/2021-06-30/documents/{document_id}").json()
    raw = requests.get(meta["url"], timeout=TIMEOUT)
    assert raw.status_code == 200
    return meta, raw


def test_lifecycle_by_successive_polls_then_plain_document(env):
    env.sandbox.gzip_threshold = 1 << 20
    orders = _feedback(env, US, [(1, "Arrived broken"), (5, "Great")])
    report_id = _create(env, US)
    statuses, body = _poll_until_final(env, report_id)
    assert statuses == ["IN_QUEUE", "IN_PROGRESS", "DONE"]
    meta, raw = _download(env, body["reportDocumentId"])
    assert "compressionAlgorithm" not in meta
    assert raw.headers["Content-Type"] == "text/plain; charset=UTF-8"
    assert raw.content.decode("utf-8") == (
        "Date\tRating\tComments\tYour Response\tArrived on Time\tItem as Described\tCustomer Service\tOrder ID"
        "\tRater Email\r\n"
        f"3/3/26\t1\tArrived broken\t\tNo\tYes\t\t{orders[0].order_id}\t{orders[0].buyer_email}\r\n")


def test_lifecycle_by_clock_and_gzip_document(env):
    env.sandbox.gzip_threshold = 0
    _feedback(env, US, [(2, "Late")])
    report_id = _create(env, US)
    env.clock.advance(seconds=59)
    assert env.sandbox.reports.reports[report_id].final_status is None
    env.clock.advance(seconds=1)
    statuses, body = _poll_until_final(env, report_id)
    assert statuses == ["DONE"]
    meta, raw = _download(env, body["reportDocumentId"])
    assert meta["compressionAlgorithm"] == "GZIP"
    assert gzip.decompress(raw.content).decode().splitlines()[1].startswith("3/3/26\t2\tLate\t")


def test_report_without_data_is_cancelled(env):
    env.at(NOW + timedelta(days=3))
    statuses, body = _poll_until_final(env, _create(env, US))
    assert statuses[-1] == "CANCELLED" and "reportDocumentId" not in body


def test_document_url_expires_after_five_minutes(env):
    _feedback(env, US, [(3, "Meh")])
    _, body = _poll_until_final(env, _create(env, US))
    meta = env.get(f"/reports/2021-06-30/documents/{body['reportDocumentId']}").json()
    env.clock.advance(minutes=5, seconds=1)
    expired = requests.get(meta["url"], timeout=TIMEOUT)
    assert expired.status_code == 403 and b"Request has expired" in expired.content
    forged = requests.get(meta["url"].replace("X-Amz-Signature=", "X-Amz-Signature=0"), timeout=TIMEOUT)
    assert forged.status_code == 403


def test_german_feedback_report_is_localised_and_cp1252(env):
    env.sandbox.gzip_threshold = 1 << 20
    orders = _feedback(env, DE, [(2, "Ware kam beschädigt an."), (4, "Gut"), (1, "Fälschung!")])
    _, body = _poll_until_final(env, _create(env, DE))
    _, raw = _download(env, body["reportDocumentId"])
    assert raw.headers["Content-Type"] == "text/plain; charset=Cp1252"
    assert raw.content.decode("cp1252").split("\r\n") == [
        "Datum\tBewertung\tKommentare\tIhre Antwort\tPünktlich angekommen\tArtikel wie beschrieben\t"
        "Kundenservice\tBestellnummer\tE-Mail-Adresse des Bewerters",
        f"3.3.26\t2\tWare kam beschädigt an.\t\tNein\tJa\t\t{orders[0].order_id}\t{orders[0].buyer_email}",
        f"3.3.26\t1\tFälschung!\t\tNein\tJa\t\t{orders[2].order_id}\t{orders[2].buyer_email}",
        "",
    ]


@pytest.fixture
def jp_env() -> Iterator[Env]:
    """The EU+JP seller."""
    yield from make_env(seller_index=1)


def test_japanese_feedback_report_is_shift_jis_with_japanese_headers(jp_env):
    jp_env.sandbox.gzip_threshold = 0
    orders = _feedback(jp_env, JP, [(1, "商品が破損して届きました。")])
    _, body = _poll_until_final(jp_env, _create(jp_env, JP))
    meta, raw = _download(jp_env, body["reportDocumentId"])
    assert raw.headers["Content-Type"] == "text/plain; charset=Windows-31J"
    text = gzip.decompress(raw.content).decode("cp932")
    assert text.split("\r\n")[:2] == [
        "日付\t評価\tコメント\t返答\t予定通り到着\t商品説明どおり\tカスタマーサービス\t注文番号\t評価者のEメールアドレス",
        f"2026/03/03\t1\t商品が破損して届きました。\t\tいいえ\tはい\t\t{orders[0].order_id}\t{orders[0].buyer_email}",
    ]
    with pytest.raises(UnicodeDecodeError):
        gzip.decompress(raw.content).decode("utf-8")


def test_bad_report_requests(env):
    assert env.post(REPORTS, json={"reportType": "NOT_A_REPORT", "marketplaceIds": [US]}).status_code == 400
    assert env.post(REPORTS, json={"reportType": "GET_SELLER_FEEDBACK_DATA"}).status_code == 400
    assert env.post(REPORTS, json={"reportType": "GET_SELLER_FEEDBACK_DATA",
                                   "marketplaceIds": [JP]}).status_code == 400  # not this seller's
    assert env.get(f"{REPORTS}/999").status_code == 404
    fatal = _create_type(env, "GET_MERCHANT_LISTINGS_ALL_DATA")
    assert _poll_until_final(env, fatal)[1]["processingStatus"] == "FATAL"


def _create_type(env, report_type):
    return env.post(REPORTS, json={"reportType": report_type, "marketplaceIds": [US]}).json()["reportId"]


def test_get_reports_lists_and_pages(env):
    ids = [_create_type(env, "GET_SELLER_FEEDBACK_DATA") for _ in range(3)]
    first = env.get(REPORTS, params={"reportTypes": "GET_SELLER_FEEDBACK_DATA", "pageSize": 2}).json()
    second = env.get(REPORTS, params={"nextToken": first["nextToken"]}).json()
    assert [r["reportId"] for r in first["reports"] + second["reports"]] == list(reversed(ids))
    assert "nextToken" not in second
    cancelled = env.call("DELETE", f"{REPORTS}/{ids[0]}")
    assert cancelled.status_code == 200
    assert env.get(f"{REPORTS}/{ids[0]}").json()["processingStatus"] == "CANCELLED"


def test_returns_reports_split_fba_and_seller_fulfilled(env):
    env.sandbox.gzip_threshold = 1 << 20
    fba = env.sandbox.add_order(env.seller.seller_id, US, NOW - timedelta(hours=3), "AFN")
    mfn = env.sandbox.add_order(env.seller.seller_id, US, NOW - timedelta(hours=3), "MFN")
    fba_return = env.sandbox.add_return(fba.order_id, "DEFECTIVE", at=NOW + timedelta(days=2))
    mfn_return = env.sandbox.add_return(mfn.order_id, "UNWANTED_ITEM", at=NOW + timedelta(days=2, hours=1),
                                        refund=False)
    env.at(NOW + timedelta(days=3))
    documents = {}
    for report_type in ("GET_FBA_FULFILLMENT_CUSTOMER_RETURNS_DATA", "GET_FLAT_FILE_RETURNS_DATA_BY_RETURN_DATE"):
        created = env.post(REPORTS, json={"reportType": report_type, "marketplaceIds": [US],
                                          "dataStartTime": START.strftime("%Y-%m-%dT%H:%M:%SZ")})
        _, body = _poll_until_final(env, created.json()["reportId"])
        documents[report_type] = _download(env, body["reportDocumentId"])[1].content.decode().split("\r\n")
    fba_lines = documents["GET_FBA_FULFILLMENT_CUSTOMER_RETURNS_DATA"]
    assert fba_lines[0].split("\t")[:3] == ["return-date", "order-id", "sku"]
    assert len(fba_lines) == 3 and fba_lines[2] == ""
    row = fba_lines[1].split("\t")
    assert row[:3] == ["2026-03-03T12:00:00+00:00", fba.order_id, fba.items[0].sku]
    assert (row[6], row[9]) == ("1", "DEFECTIVE")
    mfn_lines = documents["GET_FLAT_FILE_RETURNS_DATA_BY_RETURN_DATE"]
    assert mfn_lines[0].startswith("Order ID\tOrder date\tReturn request date\t")
    row = mfn_lines[1].split("\t")
    assert row[:3] == [mfn.order_id, "01-Mar-2026", "03-Mar-2026"]
    assert (row[15], row[18], row[-1]) == (mfn.items[0].sku, "CR-UNWANTED_ITEM", "")  # not refunded yet
    assert len(row) == 32 and len(mfn_lines) == 3
    assert (fba_return.order_id, mfn_return.order_id) == (fba.order_id, mfn.order_id)
