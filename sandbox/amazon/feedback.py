"""The ``GET_SELLER_FEEDBACK_DATA`` report: tab-separated, localised header and dates, local charset.

What is known and what is assumed:
- The report lists negative and neutral feedback only (1-3 stars): see
  https://github.com/amzn/selling-partner-api-models/issues/1999 ("that report only gives 1-3 star
  reviews") and https://github.com/amzn/selling-partner-api-models/issues/2761.
- Nine tab-separated columns: Date, Rating, Comments, Your Response, Arrived on Time, Item as Described,
  Customer Service, Order ID, Rater Email. Evidence: a production PHP importer reads the rater email at
  index 8, the order id at 7 and the three yes/no answers at 4-6, and splits dates by marketplace
  (US M/D/Y, JP Y/M/D, DE D.M.Y, other EU D/M/Y) with Shift_JIS for JP; Emipro's Odoo connector
  (amazon_ept, rating report) reads the columns by the names 'Date', 'Rating', 'Comments',
  'Your Response', 'Order ID' and parses dates as %m/%d/%y or %d/%m/%y. Issue #4 of this project gave a
  six-column US header with "Response"; the evidence above wins for the sandbox.
- German: "Datum, Bewertung, Kommentare, Ihre Antwort ... Bestellnummer, E-Mail-Adresse des Bewerters"
  as given in issue #4. The German yes/no column titles and all FR, IT, ES and JP titles are the
  sandbox's reconstruction of Seller Central's wording, NOT verified against a real file: a parser
  must map columns by position as well as by name. The localised Yes/No values are equally unverified.
- Charset: NA UTF-8, EU ``Cp1252``, JP ``Windows-31J`` (Shift_JIS family), labelled in the document's
  Content-Type as Amazon does (https://github.com/jrl84/amazon-sp-api/issues/144,
  https://github.com/saleweaver/python-amazon-sp-api/pull/764); Python knows the latter two only as
  ``cp1252`` / ``cp932``.
"""

from __future__ import annotations

from datetime import datetime

from .marketplaces import MARKETPLACES, PYTHON_CODECS
from .seed import Feedback, language

HEADERS = {
    "en": ["Date", "Rating", "Comments", "Your Response", "Arrived on Time", "Item as Described",
           "Customer Service", "Order ID", "Rater Email"],
    "de": ["Datum", "Bewertung", "Kommentare", "Ihre Antwort", "Pünktlich angekommen", "Artikel wie beschrieben",
           "Kundenservice", "Bestellnummer", "E-Mail-Adresse des Bewerters"],
    "fr": ["Date", "Évaluation", "Commentaires", "Votre réponse", "Arrivé à temps", "Article conforme à la description",
           "Service client", "Numéro de commande", "Adresse e-mail de l'évaluateur"],
    "it": ["Data", "Valutazione", "Commenti", "La tua risposta", "Arrivato in tempo", "Articolo come descritto",
           "Servizio clienti", "Numero ordine", "E-mail del valutatore"],
    "es": ["Fecha", "Valoración", "Comentarios", "Tu respuesta", "Llegó a tiempo", "Artículo según la descripción",
           "Atención al cliente", "Número de pedido", "Correo electrónico del evaluador"],
    "ja": ["日付", "評価", "コメント", "返答", "予定通り到着", "商品説明どおり", "カスタマーサービス", "注文番号",
           "評価者のEメールアドレス"],
}
YES_NO = {"en": ("Yes", "No"), "de": ("Ja", "Nein"), "fr": ("Oui", "Non"), "it": ("Sì", "No"),
          "es": ("Sí", "No"), "ja": ("はい", "いいえ")}


def format_date(marketplace_id: str, when: datetime) -> str:
    """Format a feedback date the way the marketplace's report does (US M/D/YY, UK D/M/YY, DE D.M.YY...)."""
    yy = when.strftime("%y")
    country = MARKETPLACES[marketplace_id].country
    if country in ("US", "CA"):
        return f"{when.month}/{when.day}/{yy}"
    if country == "DE":
        return f"{when.day}.{when.month}.{yy}"
    if country == "JP":
        return when.strftime("%Y/%m/%d")
    return f"{when.day}/{when.month}/{yy}"


def _clean(text: str) -> str:
    return text.replace("\t", " ").replace("\r", " ").replace("\n", " ")


def render(marketplace_id: str, rows: list[Feedback]) -> tuple[bytes, str]:
    """Return the report bytes and its Content-Type for feedback in one marketplace (1-3 stars kept)."""
    mp = MARKETPLACES[marketplace_id]
    lang = language(marketplace_id)
    yes, no = YES_NO[lang]
    lines = ["\t".join(HEADERS[lang])]
    for fb in sorted(rows, key=lambda f: (f.date, f.order_id)):
        if fb.rating > 3:
            continue
        answers = ["" if a is None else yes if a else no
                   for a in (fb.arrived_on_time, fb.item_as_described, fb.customer_service)]
        lines.append("\t".join([format_date(marketplace_id, fb.date), str(fb.rating), _clean(fb.comments),
                                _clean(fb.response), *answers, fb.order_id, fb.rater_email]))
    text = "\r\n".join(lines) + "\r\n"
    data = text.encode(PYTHON_CODECS[mp.report_charset], errors="replace")
    return data, f"text/plain; charset={mp.report_charset}"


def count_rows(rows: list[Feedback]) -> int:
    """Return how many data lines the report will hold."""
    return sum(1 for fb in rows if fb.rating <= 3)
