"""The marketplaces the sandbox knows: ids, regions, currencies, locales and report encodings.

Ids from https://developer-docs.amazon.com/sp-api/docs/marketplace-ids. Report document charsets as
observed by users of the real API (windows-1252 in NA/EU, windows-31j in JP):
https://github.com/saleweaver/python-amazon-sp-api/pull/764 and
https://github.com/jrl84/amazon-sp-api/issues/144 (Content-Type ``text/plain; charset=Cp1252``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Marketplace:
    """One Amazon marketplace as the sandbox models it."""

    marketplace_id: str
    country: str
    region: str  # NA, EU or FE: the SP-API endpoint region
    currency: str
    name: str  # SalesChannel / marketplaceName, e.g. "Amazon.com"
    locale: str  # buyer locale as GetAttributes reports it
    order_prefix: str  # first two digits of the 3-7-7 order ids seen there
    report_charset: str  # charset label in the report document's Content-Type


MARKETPLACES: dict[str, Marketplace] = {m.marketplace_id: m for m in (
    Marketplace("ATVPDKIKX0DER", "US", "NA", "USD", "Amazon.com", "en-US", "11", "UTF-8"),
    Marketplace("A2EUQ1WTGCTBG2", "CA", "NA", "CAD", "Amazon.ca", "en-CA", "70", "UTF-8"),
    Marketplace("A1F83G8C2ARO7P", "GB", "EU", "GBP", "Amazon.co.uk", "en-GB", "20", "Cp1252"),
    Marketplace("A1PA6795UKMFR9", "DE", "EU", "EUR", "Amazon.de", "de-DE", "30", "Cp1252"),
    Marketplace("A13V1IB3VIYZZH", "FR", "EU", "EUR", "Amazon.fr", "fr-FR", "40", "Cp1252"),
    Marketplace("APJ6JRA9NG5V4", "IT", "EU", "EUR", "Amazon.it", "it-IT", "40", "Cp1252"),
    Marketplace("A1RKKUPIHCS9HS", "ES", "EU", "EUR", "Amazon.es", "es-ES", "40", "Cp1252"),
    Marketplace("A1VC38T7YXB528", "JP", "FE", "JPY", "Amazon.co.jp", "ja-JP", "25", "Windows-31J"),
)}

US, CA, UK, DE, FR, IT, ES, JP = (
    "ATVPDKIKX0DER", "A2EUQ1WTGCTBG2", "A1F83G8C2ARO7P", "A1PA6795UKMFR9", "A13V1IB3VIYZZH",
    "APJ6JRA9NG5V4", "A1RKKUPIHCS9HS", "A1VC38T7YXB528",
)

# Python has no codec named "Windows-31J" or "Cp1252" spelled that way in every version; map the
# labels Amazon sends to Python codec names (cp932 is Microsoft's Shift_JIS, a.k.a. Windows-31J).
PYTHON_CODECS = {"UTF-8": "utf-8", "Cp1252": "cp1252", "Windows-31J": "cp932"}
