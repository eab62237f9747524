"""Shop domain checks: only `<name>.myshopify.com` is a shop we talk to."""

from __future__ import annotations

import re

_SHOP_RE = re.compile(r"^[a-z0-9][a-z0-9\-]*\.myshopify\.com$")


def normalise_shop_domain(value: str | None) -> str | None:
    """Return the lower-cased shop domain, or None when it is not a valid myshopify domain."""
    if not value:
        return None
    candidate = value.strip().lower()
    for prefix in ("https://", "http://"):
        if candidate.startswith(prefix):
            candidate = candidate[len(prefix):]
    candidate = candidate.rstrip("/")
    return candidate if _SHOP_RE.match(candidate) else None
