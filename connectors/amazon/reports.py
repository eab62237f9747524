"""Reports API 2021-06-30: request a report, poll it with bounded waits, download its document.

Documents come from a pre-signed URL (no SP-API auth, about five minutes valid), gzipped when
``compressionAlgorithm`` is GZIP, in the marketplace's charset named in the Content-Type (``Cp1252`` in
Europe, ``Windows-31J`` in Japan). https://developer-docs.amazon.com/sp-api/docs/reports-api-v2021-06-30-reference
"""

from __future__ import annotations

import codecs
import gzip
import re
import zlib
from datetime import datetime

import httpx

from base.retry import call_with_retries

from .client import ReportsApi, SpApiSession, tls_context
from .errors import AmazonError, NotFound, ServerError
from .orders import iso

# Charset labels Amazon puts in Content-Type that Python does not know by that name.
CHARSETS = {"windows-31j": "cp932", "ms932": "cp932", "shift_jis": "cp932", "sjis": "cp932", "x-sjis": "cp932",
            "cp1252": "cp1252", "windows-1252": "cp1252"}


class ReportFailed(AmazonError):
    """The report ended FATAL, or did not finish within the allowed wait."""


def request_report(session: SpApiSession, report_type: str, marketplaces: str | list[str], start: datetime,
                   end: datetime) -> str:
    """Ask Amazon for a report of ``report_type`` between ``start`` and ``end``; return its id."""
    api = session.api(ReportsApi)
    ids = [marketplaces] if isinstance(marketplaces, str) else list(marketplaces)
    response = session.call("reports.createReport", api.create_report, reportType=report_type,
                            marketplaceIds=ids, dataStartTime=iso(start), dataEndTime=iso(end))
    return str((response.payload or {})["reportId"])


def wait_for_report(session: SpApiSession, report_id: str, *, poll_seconds: float,
                    max_wait_seconds: float) -> str | None:
    """Poll getReport until it ends; return the document id, None when Amazon had no data (CANCELLED)."""
    api = session.api(ReportsApi)
    waited = 0.0
    while True:
        report = session.call("reports.getReport", api.get_report, report_id).payload or {}
        status = report.get("processingStatus")
        if status == "DONE":
            return report.get("reportDocumentId")
        if status == "CANCELLED":
            return None
        if status == "FATAL":
            raise ReportFailed(f"report {report_id} ended FATAL", operation="reports.getReport")
        if waited >= max_wait_seconds:
            raise ReportFailed(f"report {report_id} still {status} after {waited:.0f} s", operation="reports.getReport")
        session.sleep(poll_seconds)
        waited += poll_seconds


def download(session: SpApiSession, document_id: str) -> str:
    """Fetch a report document (pre-signed URL, no SP-API auth), un-gzip it and decode its charset."""
    api = session.api(ReportsApi)
    meta = session.call("reports.getReportDocument", api.get_report_document, document_id).payload or {}
    url = meta.get("url")
    if not url:
        raise ServerError(f"report document {document_id} has no url", operation="reports.getReportDocument")

    def attempt() -> str:
        try:
            with httpx.Client(timeout=session.timeout, verify=tls_context()) as http:
                response = http.get(url)
        except httpx.TransportError as exc:
            raise ServerError(f"report document download failed: {exc!r}", operation="reportDocument") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise ServerError(f"report document download: HTTP {response.status_code}", operation="reportDocument")
        if response.status_code != 200:
            # An expired pre-signed URL answers 403: the caller asks getReportDocument again next run.
            raise NotFound(f"report document download: HTTP {response.status_code}", status=response.status_code,
                           operation="reportDocument")
        data = response.content
        if meta.get("compressionAlgorithm") == "GZIP" or data[:2] == b"\x1f\x8b":
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError, zlib.error) as exc:
                raise ServerError(f"report document is not valid gzip: {exc}", operation="reportDocument") from exc
        return decode(data, response.headers.get("content-type", ""))

    return call_with_retries(attempt, session.retry, session.sleep, retry_on=(AmazonError,))


def decode(data: bytes, content_type: str) -> str:
    """Decode report bytes with the charset of the Content-Type, else UTF-8, else Windows-31J/1252."""
    label = ""
    match = re.search(r"charset=([^;\s]+)", content_type or "", re.IGNORECASE)
    if match:
        label = match.group(1).strip("\"'")
    candidates = []
    if label:
        candidates.append(CHARSETS.get(label.lower(), label))
    candidates += ["utf-8", "cp932", "cp1252"]
    for name in candidates:
        try:
            codecs.lookup(name)
            return data.decode(name).lstrip("\ufeff")
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("cp1252", errors="replace")


