"""Reports API 2021-06-30: createReport → getReport (IN_QUEUE → IN_PROGRESS → DONE | CANCELLED) →
getReportDocument → a pre-signed-style document URL served by the sandbox (gzipped when large).

A report advances one stage per poll or every 30 s of sandbox clock, whichever is faster. A report
without data ends CANCELLED with no document, as Amazon documents for processingStatus:
https://developer-docs.amazon.com/sp-api/docs/reports-api-v2021-06-30-reference#processingstatus
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from werkzeug.wrappers import Request, Response

from . import returns_report
from .context import Ctx
from .feedback import count_rows, render
from .http import ApiError, invalid_input, iso, json_body, list_param, parse_time
from .paging import decode, encode

STAGES = ("IN_QUEUE", "IN_PROGRESS", "DONE")
STAGE_SECONDS = 30
DOCUMENT_TTL = timedelta(minutes=5)
FEEDBACK = "GET_SELLER_FEEDBACK_DATA"
FBA_RETURNS = "GET_FBA_FULFILLMENT_CUSTOMER_RETURNS_DATA"
MFN_RETURNS = "GET_FLAT_FILE_RETURNS_DATA_BY_RETURN_DATE"
SUPPORTED = {FEEDBACK, FBA_RETURNS, MFN_RETURNS}
# Valid report types the sandbox does not generate: they end FATAL instead of a 400 for a bad type.
KNOWN_UNSUPPORTED = {
    "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL", "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL",
    "GET_MERCHANT_LISTINGS_ALL_DATA", "GET_V2_SELLER_PERFORMANCE_REPORT",
    "GET_AMAZON_FULFILLED_SHIPMENTS_DATA_GENERAL",
}
PROCESSING_STATUSES = ("CANCELLED", "DONE", "FATAL", "IN_PROGRESS", "IN_QUEUE")


@dataclass
class Report:
    """A requested report and, once done, its document."""

    report_id: str
    report_type: str
    seller_id: str
    marketplace_ids: list[str]
    data_start: datetime
    data_end: datetime
    created: datetime
    polls: int = 0
    cancelled_at: datetime | None = None
    finished_at: datetime | None = None
    final_status: str | None = None
    document_id: str | None = None


@dataclass
class Document:
    """A report document: bytes as served, their Content-Type, and whether they are gzipped."""

    document_id: str
    data: bytes
    content_type: str
    gzipped: bool


@dataclass
class ReportStore:
    """All reports and documents of the sandbox."""

    reports: dict[str, Report] = field(default_factory=dict)
    documents: dict[str, Document] = field(default_factory=dict)
    counter: int = 50000000000
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_id(self) -> str:
        """Return a fresh numeric report id."""
        with self.lock:
            self.counter += 1
            return str(self.counter)


def _status(ctx: Ctx, report: Report, poll: bool) -> str:
    """Advance the report if due and return its processingStatus."""
    if report.final_status:
        return report.final_status
    if poll:
        report.polls += 1
    by_clock = int((ctx.now - report.created).total_seconds() // STAGE_SECONDS)
    stage = min(2, max(by_clock, report.polls - 1))
    if stage < 2:
        return STAGES[stage]
    _finish(ctx, report)
    return report.final_status or "FATAL"


def _finish(ctx: Ctx, report: Report) -> None:
    report.finished_at = ctx.now
    if report.report_type not in SUPPORTED:
        report.final_status = "FATAL"
        return
    built = _build(ctx.sandbox, report)
    if built is None:
        report.final_status = "CANCELLED"
        return
    data, content_type = built
    gzipped = len(data) >= ctx.sandbox.gzip_threshold
    suffix = hashlib.sha256(ctx.sandbox.secret + report.report_id.encode()).hexdigest()[:14].upper()
    document_id = f"amzn1.spdoc.1.4.na.{report.report_id}.T{suffix}"
    ctx.sandbox.reports.documents[document_id] = Document(
        document_id, gzip.compress(data, mtime=0) if gzipped else data, content_type, gzipped)
    report.document_id = document_id
    report.final_status = "DONE"


def _build(sandbox: Any, report: Report) -> tuple[bytes, str] | None:
    """Render the report's document, or None when it holds no data (→ CANCELLED)."""
    mp = report.marketplace_ids[0]
    if report.report_type == FEEDBACK:
        rows = [fb for fb in sandbox.feedback
                if fb.seller_id == report.seller_id and fb.marketplace_id in report.marketplace_ids
                and report.data_start <= fb.date <= report.data_end]
        return render(mp, rows) if count_rows(rows) else None
    channel = "AFN" if report.report_type == FBA_RETURNS else "MFN"
    pairs = [(ret, sandbox.orders_by_id[ret.order_id]) for ret in sandbox.returns
             if ret.seller_id == report.seller_id and ret.marketplace_id in report.marketplace_ids
             and report.data_start <= ret.return_date <= report.data_end]
    pairs = [(ret, order) for ret, order in pairs if order.fulfillment_channel == channel]
    if not pairs:
        return None
    return (returns_report.render_fba if channel == "AFN" else returns_report.render_mfn)(mp, pairs)


def report_json(ctx: Ctx, report: Report, poll: bool = False) -> dict[str, Any]:
    """Render a ``Report`` object."""
    with ctx.sandbox.reports.lock:  # concurrent polls must not finish a report twice
        status = _status(ctx, report, poll)
    body: dict[str, Any] = {
        "reportId": report.report_id, "reportType": report.report_type,
        "marketplaceIds": report.marketplace_ids, "dataStartTime": iso(report.data_start),
        "dataEndTime": iso(report.data_end), "createdTime": iso(report.created), "processingStatus": status,
    }
    if status != "IN_QUEUE":
        body["processingStartTime"] = iso(report.created + timedelta(seconds=1))
    if report.final_status and report.finished_at:
        body["processingEndTime"] = iso(report.finished_at)
    if report.document_id:
        body["reportDocumentId"] = report.document_id
    return body


def create_report(ctx: Ctx) -> tuple[int, Any]:
    """POST /reports/2021-06-30/reports (createReport)."""
    body = json_body(ctx.request.get_data())
    report_type = body.get("reportType")
    marketplaces = body.get("marketplaceIds")
    if not isinstance(report_type, str) or report_type not in SUPPORTED | KNOWN_UNSUPPORTED:
        raise invalid_input("Invalid input", f"Invalid reportType: {report_type!r}")
    if not isinstance(marketplaces, list) or not 1 <= len(marketplaces) <= 25:
        raise invalid_input("Invalid input", "marketplaceIds must list 1 to 25 marketplaces.")
    for mp in marketplaces:
        if mp not in ctx.seller.marketplace_ids:
            raise invalid_input("Invalid input", f"Invalid marketplaceId: {mp}")
    end = parse_time(body["dataEndTime"], "dataEndTime") if body.get("dataEndTime") else ctx.now
    start = (parse_time(body["dataStartTime"], "dataStartTime") if body.get("dataStartTime")
             else end - timedelta(days=30))
    if start > end:
        raise invalid_input("Invalid input", "dataStartTime must be before dataEndTime.")
    report = Report(ctx.sandbox.reports.next_id(), report_type, ctx.seller.seller_id, list(marketplaces),
                    start, min(end, ctx.now), ctx.now)
    ctx.sandbox.reports.reports[report.report_id] = report
    return 202, {"reportId": report.report_id}


def _own_report(ctx: Ctx, report_id: str) -> Report:
    report = ctx.sandbox.reports.reports.get(report_id)
    if report is None or report.seller_id != ctx.seller.seller_id:
        raise ApiError(404, "NotFound", "The report was not found.", f"reportId {report_id}")
    return report


def get_report(ctx: Ctx, reportId: str) -> tuple[int, Any]:  # noqa: N803 - path parameter name
    """GET /reports/2021-06-30/reports/{reportId} (getReport); each poll may advance the report."""
    return 200, report_json(ctx, _own_report(ctx, reportId), poll=True)


def cancel_report(ctx: Ctx, reportId: str) -> tuple[int, Any]:  # noqa: N803
    """DELETE /reports/2021-06-30/reports/{reportId}: only IN_QUEUE reports can be cancelled."""
    report = _own_report(ctx, reportId)
    with ctx.sandbox.reports.lock:
        if _status(ctx, report, poll=False) != "IN_QUEUE":
            raise invalid_input("Invalid input", "Only reports with processingStatus IN_QUEUE can be cancelled.")
        report.final_status, report.cancelled_at, report.finished_at = "CANCELLED", ctx.now, ctx.now
    return 200, None


def get_reports(ctx: Ctx) -> tuple[int, Any]:
    """GET /reports/2021-06-30/reports (getReports), newest first."""
    args = ctx.request.args
    if args.get("nextToken"):
        state = decode(ctx.sandbox.secret, args["nextToken"], "nextToken")
        types, statuses, size, offset = state["t"], state["s"], state["n"], state["o"]
    else:
        types, statuses = list_param(args, "reportTypes"), list_param(args, "processingStatuses")
        if not types:
            raise invalid_input("Invalid input", "reportTypes is required unless nextToken is given.")
        if any(s not in PROCESSING_STATUSES for s in statuses):
            raise invalid_input("Invalid input", "Invalid input in processing status")
        size = int(args.get("pageSize", "10")) if args.get("pageSize", "10").isdigit() else 0
        if not 1 <= size <= 100:
            raise invalid_input("Invalid input", "pageSize must be between 1 and 100.")
        offset = 0
    mine = [r for r in ctx.sandbox.reports.reports.values()
            if r.seller_id == ctx.seller.seller_id and r.report_type in types]
    mine.sort(key=lambda r: (r.created, r.report_id), reverse=True)
    rendered = [report_json(ctx, r) for r in mine]
    if statuses:
        rendered = [r for r in rendered if r["processingStatus"] in statuses]
    body: dict[str, Any] = {"reports": rendered[offset:offset + size]}
    if offset + size < len(rendered):
        body["nextToken"] = encode(ctx.sandbox.secret, {"t": types, "s": statuses, "n": size, "o": offset + size})
    return 200, body


def sign(secret: bytes, document_id: str, expires: datetime) -> str:
    """Return the signature of a document URL (stands in for S3's X-Amz-Signature)."""
    return hmac.new(secret, f"{document_id}|{iso(expires)}".encode(), hashlib.sha256).hexdigest()


def get_report_document(ctx: Ctx, reportDocumentId: str) -> tuple[int, Any]:  # noqa: N803
    """GET /reports/2021-06-30/documents/{reportDocumentId}: a URL valid 5 minutes."""
    document = ctx.sandbox.reports.documents.get(reportDocumentId)
    owner = next((r for r in ctx.sandbox.reports.reports.values() if r.document_id == reportDocumentId), None)
    if document is None or owner is None or owner.seller_id != ctx.seller.seller_id:
        raise ApiError(404, "NotFound", "The report document was not found.", "")
    expires = ctx.now + DOCUMENT_TTL
    url = (f"{ctx.sandbox.public_url(ctx.request)}/__documents/{reportDocumentId}?X-Amz-Expires=300"
           f"&X-Amz-Date={expires.strftime('%Y%m%dT%H%M%SZ')}&X-Amz-Signature="
           f"{sign(ctx.sandbox.secret, reportDocumentId, expires)}")
    body: dict[str, Any] = {"reportDocumentId": reportDocumentId, "url": url}
    if document.gzipped:
        body["compressionAlgorithm"] = "GZIP"
    return 200, body


def serve_document(sandbox: Any, request: Request, document_id: str) -> Response:
    """Serve a report document like S3 serves a pre-signed URL (no SP-API auth, 5 minute expiry)."""
    document = sandbox.reports.documents.get(document_id)
    try:
        expires = parse_time(request.args.get("X-Amz-Date", ""), "X-Amz-Date")
    except ApiError:
        expires = None
    signature = request.args.get("X-Amz-Signature", "")
    if document is None or expires is None or not hmac.compare_digest(
            signature, sign(sandbox.secret, document_id, expires)):
        return Response(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>"
                        b"<Message>Access Denied</Message></Error>", 403, content_type="application/xml")
    if sandbox.clock.now() > expires:
        return Response(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>"
                        b"<Message>Request has expired</Message></Error>", 403, content_type="application/xml")
    return Response(document.data, 200, content_type=document.content_type)
