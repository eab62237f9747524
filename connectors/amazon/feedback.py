"""Seller feedback from the ``GET_SELLER_FEEDBACK_DATA`` report: request, poll, download, parse.

The report is tab-separated text with a header and dates in the marketplace's language and format
(US ``M/D/YY``, UK/FR/IT/ES ``D/M/YY``, DE ``D.M.YY``, JP ``YYYY/MM/DD``), in the marketplace's charset
(``Cp1252`` in Europe, ``Windows-31J`` in Japan, labelled in the document's Content-Type), gzipped when
``compressionAlgorithm`` says so. Columns are matched by header name in every language we know and by
position otherwise (the order is the same everywhere: date, rating, comments, response, order id, rater).
https://developer-docs.amazon.com/sp-api/docs/report-type-values-performance
https://developer-docs.amazon.com/sp-api/docs/reports-api-v2021-06-30-reference
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime

from connectors.records import ReviewRecord

from .client import SpApiSession
from .marketplaces import country_of
from .reports import download, request_report, wait_for_report

REPORT_TYPE = "GET_SELLER_FEEDBACK_DATA"
SOURCE = "amazon_feedback"
# Column positions: the nine-column report (three yes/no answers between the response and the order id,
# as importers of real files read it) and the older six-column one.
LAYOUTS = {
    9: {"date": 0, "rating": 1, "comments": 2, "response": 3, "order_id": 7, "rater_email": 8},
    6: {"date": 0, "rating": 1, "comments": 2, "response": 3, "order_id": 4, "rater_email": 5},
}
# Header names per column, lower-cased, as Seller Central writes them (and close variants).
HEADER_NAMES: dict[str, tuple[str, ...]] = {
    "date": ("date", "datum", "data", "fecha", "日付"),
    "rating": ("rating", "bewertung", "évaluation", "evaluation", "note", "valutazione", "voto", "valoración",
               "valoracion", "puntuación", "評価"),
    "comments": ("comments", "comment", "kommentare", "kommentar", "commentaires", "commentaire", "commenti",
                 "commento", "comentarios", "comentario", "コメント"),
    "response": ("response", "your response", "antwort", "ihre antwort", "réponse", "votre réponse", "risposta",
                 "la tua risposta", "respuesta", "tu respuesta", "返答", "回答"),
    "order_id": ("order id", "order-id", "bestellnummer", "numéro de commande", "n° de commande",
                 "numero ordine", "numero d'ordine", "id ordine", "número de pedido", "n.º de pedido", "注文番号"),
    "rater_email": ("rater email", "e-mail-adresse des bewerters", "adresse e-mail de l'évaluateur",
                    "e-mail del valutatore", "correo electrónico del evaluador", "評価者のeメールアドレス",
                    "評価者のメールアドレス"),
}
LANGUAGES = {"US": "en", "CA": "en", "GB": "en", "AU": "en", "SG": "en", "IN": "en", "IE": "en", "DE": "de",
             "AT": "de", "FR": "fr", "BE": "fr", "IT": "it", "ES": "es", "MX": "es", "JP": "ja", "NL": "nl",
             "SE": "sv", "PL": "pl", "TR": "tr", "BR": "pt"}
MONTH_FIRST = {"US", "CA"}
ORDER_ID = re.compile(r"^\d{3}-\d{7}-\d{7}$")


@dataclass(frozen=True)
class FeedbackEntry:
    """One feedback line of the report."""

    order_id: str
    rating: int
    day: date
    comments: str
    response: str


def _norm(text: str) -> str:
    return unicodedata.normalize("NFC", text).strip().strip("\ufeff").casefold()


def _columns(header: list[str]) -> dict[str, int]:
    """Map our column names to positions: by header name, the rest by Amazon's fixed column order."""
    names = [_norm(h) for h in header]
    found: dict[str, int] = {}
    for column, aliases in HEADER_NAMES.items():
        wanted = {_norm(a) for a in aliases}
        index = next((i for i, name in enumerate(names) if name in wanted), None)
        if index is not None:
            found[column] = index
    layout = LAYOUTS[9] if len(header) >= 9 else LAYOUTS[6]
    if len(found) < 3:
        return dict(layout)
    for column, index in layout.items():
        if column not in found and index < len(header) and index not in found.values():
            found[column] = index
    return found


def parse_day(text: str, country: str | None) -> date:
    """Parse a report date in the marketplace's format (``M/D/YY`` in NA, ``D.M.YY`` in DE, ``Y/M/D`` in JP)."""
    parts = [p for p in re.split(r"[./\-年月日\s]+", text.strip()) if p]
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"unrecognised feedback date {text!r}")
    a, b, c = (int(p) for p in parts)
    if len(parts[0]) == 4:
        year, month, day = a, b, c
    elif country in MONTH_FIRST:
        month, day, year = a, b, c
    else:
        day, month, year = a, b, c
    if year < 100:
        year += 2000
    return date(year, month, day)


def parse(text: str, marketplace_id: str) -> list[FeedbackEntry]:
    """Parse a feedback report; lines that cannot be read are skipped (never a half-read rating)."""
    country = country_of(marketplace_id)
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    columns = _columns(lines[0].split("\t"))
    entries = []
    for line in lines[1:]:
        cells = line.split("\t")
        try:
            order_id = cells[columns["order_id"]].strip()
            rating = int(cells[columns["rating"]].strip())
            day = parse_day(cells[columns["date"]], country)
        except (KeyError, IndexError, ValueError):
            continue
        if not 1 <= rating <= 5 or not ORDER_ID.match(order_id):
            continue

        def cell(name: str, cells: list[str] = cells) -> str:
            index = columns.get(name)
            return cells[index].strip() if index is not None and index < len(cells) else ""

        entries.append(FeedbackEntry(order_id, rating, day, cell("comments"), cell("response")))
    return entries


def to_records(entries: list[FeedbackEntry], marketplace_id: str) -> list[ReviewRecord]:
    """Turn report entries into review records (the rater's anonymised e-mail is not kept)."""
    language = LANGUAGES.get(country_of(marketplace_id) or "", None)
    return [ReviewRecord(source=SOURCE, external_id=e.order_id, rating=e.rating,
                         created_at=datetime(e.day.year, e.day.month, e.day.day, tzinfo=UTC), body=e.comments or None,
                         language=language, order_external_id=e.order_id) for e in entries]


def fetch_feedback(session: SpApiSession, marketplace_id: str, start: datetime, end: datetime, *,
                   poll_seconds: float, max_wait_seconds: float) -> list[FeedbackEntry]:
    """Request, wait for, download and parse one marketplace's feedback report."""
    report_id = request_report(session, REPORT_TYPE, marketplace_id, start, end)
    document_id = wait_for_report(session, report_id, poll_seconds=poll_seconds, max_wait_seconds=max_wait_seconds)
    if document_id is None:
        return []
    return parse(download(session, document_id), marketplace_id)
