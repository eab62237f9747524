"""What every email carries besides its content: the sender's postal address and the merchant's brand.

CAN-SPAM requires the sender's valid physical postal address in every commercial message
(https://www.ftc.gov/business-guidance/resources/can-spam-act-compliance-guide-business): it defaults from the
Shopify shop's billing address and the merchant can edit it; without one no marketing email leaves (reason
``no_postal_address``, enforced by the send policy and the last check). The brand — an https logo, an accent
colour and a footer line — is the merchant's, validated here so the layout only ever sees clean values; colours
used for text are adjusted until they are readable (WCAG AA, 4.5:1) on the light and the dark card.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from coloraide import Color

from plugin.models import Merchant, Store

DEFAULT_ACCENT = "#1d4ed8"
# The card's background in the light and in the dark scheme (default_templates/layout.html).
LIGHT_CARD = "#ffffff"
DARK_CARD = "#1f2937"
DARK_TEXT = "#111827"
# WCAG 2.1 AA for normal text: https://www.w3.org/TR/WCAG21/#contrast-minimum
MIN_CONTRAST = 4.5
MAX_ADDRESS = 500
MAX_FOOTER = 300
MAX_LOGO_URL = 2048
_HEX = re.compile(r"#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class BrandRefused(ValueError):
    """A brand or address value that cannot be used; ``field`` names the setting, the message says why."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def clean_logo_url(value: str | None) -> str | None:
    """Return the logo URL to store (None when blank); raise BrandRefused unless it is an https URL."""
    text = (value or "").strip()
    if not text:
        return None
    if len(text) > MAX_LOGO_URL:
        raise BrandRefused("logo_url", f"Logo URL is too long ({MAX_LOGO_URL} characters at most).")
    parts = urlsplit(text)
    if parts.scheme.lower() != "https" or not parts.hostname:
        raise BrandRefused("logo_url", "Logo URL must be an https:// address of an image, "
                                       "e.g. https://cdn.shopify.com/logo.png.")
    if re.search(r"[\s\"'<>\\]", text) or parts.username or parts.password:
        raise BrandRefused("logo_url", "Logo URL may not contain spaces, quotes, angle brackets or a login.")
    return text


def clean_accent_color(value: str | None) -> str | None:
    """Return the accent colour as lowercase ``#rrggbb`` (None when blank); raise BrandRefused otherwise."""
    text = (value or "").strip()
    if not text:
        return None
    match = _HEX.fullmatch(text)
    if match is None:
        raise BrandRefused("accent_color", f"Accent colour must be a hex colour like #1d4ed8 (got '{text[:20]}').")
    digits = match.group(1).lower()
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    return f"#{digits}"


def clean_footer(value: str | None) -> str | None:
    """Return the footer line (None when blank): one line of plain text, at most MAX_FOOTER characters."""
    text = " ".join(_CONTROL.sub(" ", value or "").split())
    if len(text) > MAX_FOOTER:
        raise BrandRefused("email_footer", f"Footer line is too long ({MAX_FOOTER} characters at most).")
    return text or None


def clean_postal_address(value: str | None) -> str | None:
    """Return the postal address as one line (lines joined by ", "; None when blank); raise BrandRefused."""
    lines = [" ".join(line.split()) for line in _CONTROL.sub("\n", (value or "").replace("\r", "\n")).split("\n")]
    text = ", ".join(line.strip(" ,") for line in lines if line.strip(" ,"))
    if len(text) > MAX_ADDRESS:
        raise BrandRefused("postal_address", f"Postal address is too long ({MAX_ADDRESS} characters at most).")
    if text and "," not in text:
        raise BrandRefused("postal_address", "Postal address needs a street or PO box, a town and a country "
                                             "(one per line, or separated by commas).")
    return text or None


def adopt_shop_address(store: Store, address: str | None) -> None:
    """Take the shop's billing address as the store's postal address unless the merchant set one."""
    if not store.postal_address_edited:
        store.postal_address = address


def has_postal_address(store: Store) -> bool:
    """Say whether the store's emails can carry a postal address (marketing needs one)."""
    return bool((store.postal_address or "").strip())


def _readable(color: str, background: str) -> str:
    """Return ``color``, darkened or lightened in OKLCh until it reads on ``background`` at MIN_CONTRAST."""
    base = Color(color)
    if base.contrast(background) >= MIN_CONTRAST:
        return base.to_string(hex=True)
    lighten = Color(background).luminance() < 0.5
    candidate = base.convert("oklch")
    for _ in range(20):
        lightness = candidate["lightness"] + (0.05 if lighten else -0.05)
        candidate = candidate.clone().set("lightness", min(max(lightness, 0.0), 1.0))
        if candidate.contrast(background) >= MIN_CONTRAST:
            return candidate.convert("srgb").fit().to_string(hex=True)
    return "#ffffff" if lighten else "#000000"


@dataclass(frozen=True)
class Brand:
    """The sender's identity in an email: store name, logo, colours, footer line and postal address."""

    store_name: str = ""
    logo_url: str | None = None
    accent_color: str | None = None
    footer_line: str | None = None
    postal_address: str | None = None

    @property
    def accent(self) -> str:
        """Return the accent colour (the merchant's, else the default)."""
        return self.accent_color or DEFAULT_ACCENT

    @property
    def on_accent(self) -> str:
        """Return the text colour with the higher contrast on an accent-coloured button."""
        accent = Color(self.accent)
        return "#ffffff" if accent.contrast("#ffffff") >= accent.contrast(DARK_TEXT) else DARK_TEXT

    @property
    def link(self) -> str:
        """Return the accent as a link colour readable on the light card."""
        return _readable(self.accent, LIGHT_CARD)

    @property
    def dark_link(self) -> str:
        """Return the accent as a link colour readable on the dark card."""
        return _readable(self.accent, DARK_CARD)


def brand_of(store: Store, merchant: Merchant | None) -> Brand:
    """Return the brand of a store's emails (the merchant's brand, the store's postal address)."""
    return Brand(store_name=store.name or (merchant.name if merchant else ""),
                 logo_url=merchant.logo_url if merchant else None,
                 accent_color=merchant.accent_color if merchant else None,
                 footer_line=merchant.email_footer if merchant else None,
                 postal_address=(store.postal_address or "").strip() or None)
