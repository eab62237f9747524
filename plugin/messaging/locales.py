"""The locales we ship templates in, and how a customer's or store's locale tag maps onto them."""

from __future__ import annotations

from babel import Locale

SUPPORTED = ("en", "de", "fr", "es", "it", "pt-BR", "ja", "zh-Hans", "zh-Hant", "ar")
RTL = frozenset({"ar"})
DEFAULT = "en"

# Script or region variants that decide between the two written Chinese standards.
_TRADITIONAL_REGIONS = {"TW", "HK", "MO"}


def normalize(tag: str | None) -> str | None:
    """Map a BCP 47 / POSIX tag onto a supported locale (``pt`` → ``pt-BR``, ``zh-TW`` → ``zh-Hant``) or None."""
    if not tag:
        return None
    parts = [p for p in tag.replace("_", "-").split("-") if p]
    if not parts:
        return None
    language = parts[0].lower()
    rest = {p.upper() if len(p) == 2 else p.title() for p in parts[1:]}
    if language == "zh":
        if "Hant" in rest or rest & _TRADITIONAL_REGIONS:
            return "zh-Hant"
        return "zh-Hans"
    if language == "pt":
        # We ship Brazilian Portuguese only; it reads naturally to European readers too.
        return "pt-BR"
    for supported in SUPPORTED:
        if supported.lower() == language:
            return supported
    return None


def choose(customer_locale: str | None, store_locale: str | None, fallback: str = DEFAULT) -> str:
    """Pick the customer's locale, else the store's, else the fallback (English)."""
    for candidate in (customer_locale, store_locale, fallback):
        chosen = normalize(candidate)
        if chosen:
            return chosen
    return DEFAULT


def babel_locale(locale: str) -> Locale:
    """Return the Babel Locale for a supported locale tag (``zh-Hant`` → ``zh_Hant``)."""
    return Locale.parse(locale.replace("-", "_"))


def direction(locale: str) -> str:
    """Return ``rtl`` for right-to-left scripts, else ``ltr``."""
    return "rtl" if locale in RTL else "ltr"
