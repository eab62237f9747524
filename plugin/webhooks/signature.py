"""Shopify's webhook signature: base64 HMAC-SHA256 of the raw request body, keyed with the app secret.

https://shopify.dev/docs/apps/build/webhooks/subscribe/https#step-5-verify-the-webhook
The body is hashed exactly as received (bytes), never after decoding or re-serialising the JSON.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def sign_body(raw_body: bytes, secret: str) -> str:
    """Return the ``X-Shopify-Hmac-Sha256`` value Shopify would send for this body."""
    digest = hmac.new(secret.encode("utf-8"), raw_body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def is_valid_signature(raw_body: bytes, received: str, secret: str) -> bool:
    """Say whether ``received`` is the body's signature, comparing in constant time."""
    if not received or not secret:
        return False
    expected = sign_body(raw_body, secret)
    return hmac.compare_digest(expected.encode("ascii"), received.strip().encode("utf-8", "replace"))
