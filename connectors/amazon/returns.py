"""Returns and refunds of Amazon orders, from the returns reports (Orders 2026-01-01 has neither).

Why reports: the Orders API (v0 and 2026-01-01) carries no return or refund state; the FBA customer
returns report lists units buyers sent back to Amazon's warehouses, and the seller-fulfilled returns
report lists return requests with their refunded amount. (The Finances API's refund events would give
refunds too, but need another role; the reports need only the roles the feedback report needs.)
https://developer-docs.amazon.com/sp-api/docs/report-type-values-returns
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from .client import SpApiSession
from .orders import parse_time
from .reports import download, request_report, wait_for_report

FBA_RETURNS = "GET_FBA_FULFILLMENT_CUSTOMER_RETURNS_DATA"
MFN_RETURNS = "GET_FLAT_FILE_RETURNS_DATA_BY_RETURN_DATE"


@dataclass(frozen=True)
class ReturnEntry:
    """One returned order (or part of it) and what was refunded, when the report says so."""

    order_id: str
    returned_at: datetime | None
    refunded_amount: Decimal | None


def _rows(text: str) -> list[dict[str, str]]:
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    header = [h.strip().strip("\ufeff").lower() for h in lines[0].split("\t")]
    return [dict(zip(header, (c.strip() for c in line.split("\t")), strict=False)) for line in lines[1:]]


def _day(text: str) -> datetime | None:
    for pattern in ("%d-%b-%Y", "%Y-%m-%d", "%m/%d/%Y"):
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def parse_fba(text: str) -> list[ReturnEntry]:
    """Parse GET_FBA_FULFILLMENT_CUSTOMER_RETURNS_DATA (``return-date`` is ISO 8601, ``order-id``)."""
    out = []
    for row in _rows(text):
        if row.get("order-id"):
            try:
                when = parse_time(row.get("return-date"))
            except ValueError:
                when = None
            out.append(ReturnEntry(row["order-id"], when, None))
    return out


def parse_mfn(text: str) -> list[ReturnEntry]:
    """Parse GET_FLAT_FILE_RETURNS_DATA_BY_RETURN_DATE (``Return request date`` like 10-Jul-2025)."""
    out = []
    for row in _rows(text):
        if not row.get("order id"):
            continue
        refunded = None
        if row.get("refunded amount"):
            try:
                refunded = Decimal(row["refunded amount"].replace(",", ""))
            except InvalidOperation:
                refunded = None
        out.append(ReturnEntry(row["order id"], _day(row.get("return request date", "")), refunded))
    return out


def fetch_returns(session: SpApiSession, marketplace_ids: list[str], start: datetime, end: datetime, *,
                  poll_seconds: float, max_wait_seconds: float) -> list[ReturnEntry]:
    """Fetch both returns reports for the seller's marketplaces (one request each) and return their entries."""
    entries: list[ReturnEntry] = []
    for report_type, parser in ((FBA_RETURNS, parse_fba), (MFN_RETURNS, parse_mfn)):
        report_id = request_report(session, report_type, marketplace_ids, start, end)
        document_id = wait_for_report(session, report_id, poll_seconds=poll_seconds,
                                      max_wait_seconds=max_wait_seconds)
        if document_id is not None:
            entries.extend(parser(download(session, document_id)))
    return entries
