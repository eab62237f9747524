"""Parsing GET_SELLER_FEEDBACK_DATA: every marketplace's header, date format and charset."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.amazon.feedback import parse, parse_day, to_records
from connectors.amazon.reports import decode
from sandbox.amazon.feedback import render
from sandbox.amazon.marketplaces import DE, ES, FR, IT, JP, UK, US
from sandbox.amazon.seed import Feedback

ROWS = [  # (day, rating, comment) per marketplace; the report keeps 1-3 stars only
    (datetime(2026, 1, 4, 9, 30, tzinfo=UTC), 1, "{fake}"),
    (datetime(2026, 2, 11, 23, 5, tzinfo=UTC), 2, "{damaged}"),
    (datetime(2026, 12, 1, 0, 0, tzinfo=UTC), 3, "{late}"),
    (datetime(2026, 2, 12, 8, 0, tzinfo=UTC), 5, "great"),
]
TEXTS = {
    US: ("Looks like a fake.", "Arrived damaged.", "Late delivery."),
    UK: ("Counterfeit!", "Box crushed, item broken.", "Took ages, late."),
    DE: ("Sieht aus wie eine Fälschung.", "Ware kam beschädigt an.", "Lieferung kam zu spät."),
    FR: ("On dirait une contrefaçon.", "Article arrivé abîmé.", "Livraison en retard."),
    IT: ("Sembra un falso.", "Articolo arrivato danneggiato.", "Consegna in ritardo."),
    ES: ("Parece una falsificación.", "El artículo llegó dañado.", "Entrega con retraso."),
    JP: ("偽物のようです。", "商品が破損して届きました。", "配送が遅れました。"),
}


def feedback(marketplace: str) -> list[Feedback]:
    fake, damaged, late = TEXTS[marketplace]
    out = []
    for n, (when, rating, comment) in enumerate(ROWS):
        text = comment.format(fake=fake, damaged=damaged, late=late)
        out.append(Feedback("A1SELLER", marketplace, f"11{n}-1234567-765432{n}", when, rating, text, "",
                            f"buyer{n}@marketplace.amazon.com"))
    return out


@pytest.mark.parametrize("marketplace", [US, UK, DE, FR, IT, ES, JP])
def test_each_marketplace_parses_to_the_right_orders_ratings_and_days(marketplace):
    data, content_type = render(marketplace, feedback(marketplace))
    entries = parse(decode(data, content_type), marketplace)
    expected = [(f.order_id, f.rating, f.date.date(), f.comments) for f in feedback(marketplace) if f.rating <= 3]
    assert [(e.order_id, e.rating, e.day, e.comments) for e in entries] == sorted(
        expected, key=lambda row: row[2])


def test_japanese_report_is_windows_31j_and_round_trips():
    data, content_type = render(JP, feedback(JP))
    assert content_type == "text/plain; charset=Windows-31J"
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    entries = parse(decode(data, content_type), JP)
    assert entries[0].comments == "偽物のようです。"


def test_charset_missing_from_content_type_is_detected():
    data, _ = render(JP, feedback(JP))
    assert parse(decode(data, "text/plain"), JP)[0].comments == "偽物のようです。"
    data, _ = render(DE, feedback(DE))
    assert parse(decode(data, ""), DE)[0].comments == "Sieht aus wie eine Fälschung."
    utf8 = "\ufeff" + render(US, feedback(US))[0].decode("utf-8")
    assert parse(decode(utf8.encode("utf-8"), "text/plain; charset=UTF-8"), US)[0].rating == 1


def test_unknown_header_wording_falls_back_to_column_positions():
    text = "Datum (lokal)\tSterne\tText\tAntwort des Händlers\tBestell-Nr.\tMail\r\n" \
           "4.1.26\t1\tGefälscht\t\t302-1234567-7654321\tx@y\r\n"
    (entry,) = parse(text, DE)
    assert (entry.order_id, entry.rating, entry.day.isoformat(), entry.comments) == (
        "302-1234567-7654321", 1, "2026-01-04", "Gefälscht")


def test_nine_column_report_with_unknown_titles_uses_amazons_positions():
    text = "D\tR\tC\tYR\tOn time\tAs described\tService\tOrder\tMail\r\n" \
           "2026/01/04\t2\t遅い\t\tいいえ\tはい\t\t250-1234567-7654321\tx@y\r\n"
    (entry,) = parse(text, "A1VC38T7YXB528")
    assert (entry.order_id, entry.rating, entry.day.isoformat(), entry.comments) == (
        "250-1234567-7654321", 2, "2026-01-04", "遅い")


def test_unreadable_lines_are_skipped_not_half_read():
    text = "Date\tRating\tComments\tResponse\tOrder ID\tRater Email\n" \
           "13/45/26\t1\tbad date\t\t111-1234567-7654321\tx\n" \
           "1/4/26\tfive\tbad rating\t\t111-1234567-7654322\tx\n" \
           "1/4/26\t2\tok\t\tnot-an-order\tx\n" \
           "1/4/26\t2\tgood line\t\t111-1234567-7654323\tx\n"
    assert [e.order_id for e in parse(text, US)] == ["111-1234567-7654323"]


@pytest.mark.parametrize(("text", "country", "expected"), [
    ("1/4/26", "US", "2026-01-04"), ("1/4/26", "GB", "2026-04-01"), ("4.1.26", "DE", "2026-01-04"),
    ("2026/01/04", "JP", "2026-01-04"), ("04/01/2026", "FR", "2026-01-04"), ("2026年1月4日", "JP", "2026-01-04"),
])
def test_date_formats(text, country, expected):
    assert parse_day(text, country).isoformat() == expected


def test_records_carry_language_and_order_but_not_the_rater_email():
    data, content_type = render(IT, feedback(IT))
    records = to_records(parse(decode(data, content_type), IT), IT)
    assert {r.language for r in records} == {"it"}
    assert all(r.reviewer_email is None and r.order_external_id == r.external_id for r in records)
    assert records[0].created_at == datetime(2026, 1, 4, tzinfo=UTC)

