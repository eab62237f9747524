"""Signed, expiring links for the public pages (survey score, unsubscribe, reorder, review, tracking).

A token is ``itsdangerous.URLSafeTimedSerializer`` output over ``{"m": message id, "p": purpose, ...}``,
signed with the app's secret key and a per-purpose salt, so a token made for one purpose is refused by
every other, cannot be forged without the key, and cannot be enumerated (message ids are inside the
signature). The signing time comes from the injected clock, so expiry is testable without sleeping.
"""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from base.clock import Clock

LIFETIMES: dict[str, timedelta] = {
    "score": timedelta(days=60),
    "unsubscribe": timedelta(days=400),
    "reorder": timedelta(days=120),
    "review": timedelta(days=120),
    "birthday": timedelta(days=120),
    # The tracking page of a delivery update: long enough for a return after a slow delivery.
    "track": timedelta(days=120),
    "cancel_reason": timedelta(days=60),
}
PATHS = {"score": "/s/", "unsubscribe": "/u/", "reorder": "/r/", "review": "/v/", "birthday": "/b/", "track": "/t/",
         "cancel_reason": "/c/"}


class LinkInvalid(ValueError):
    """The token was not made by us for this purpose (forged, truncated or altered)."""


class LinkExpired(ValueError):
    """The token is genuine but older than its purpose allows."""


@functools.lru_cache(maxsize=64)
def _serializer(secret_key: str, purpose: str, clock: Clock) -> URLSafeTimedSerializer:
    if purpose not in LIFETIMES:
        raise ValueError(f"unknown link purpose {purpose!r}")

    class _ClockSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(clock.now().timestamp())

    return URLSafeTimedSerializer(secret_key, salt=f"aftercare.link.{purpose}", signer=_ClockSigner)


def make_token(secret_key: str, clock: Clock, purpose: str, message_id: int, **extra: Any) -> str:
    """Sign a token for one message and purpose; ``extra`` holds small values (e.g. the score)."""
    return _serializer(secret_key, purpose, clock).dumps({"m": message_id, "p": purpose, **extra})


def read_token(secret_key: str, clock: Clock, purpose: str, token: str) -> dict[str, Any]:
    """Return the token's payload; raise LinkExpired or LinkInvalid."""
    serializer = _serializer(secret_key, purpose, clock)
    try:
        payload = serializer.loads(token, max_age=int(LIFETIMES[purpose].total_seconds()))
    except SignatureExpired as exc:
        raise LinkExpired(purpose) from exc
    except BadSignature as exc:
        raise LinkInvalid(purpose) from exc
    if not isinstance(payload, dict) or payload.get("p") != purpose or not isinstance(payload.get("m"), int):
        raise LinkInvalid(purpose)
    return payload


def url(base_url: str, secret_key: str, clock: Clock, purpose: str, message_id: int, **extra: Any) -> str:
    """Return the absolute public URL of a signed link."""
    return base_url.rstrip("/") + PATHS[purpose] + make_token(secret_key, clock, purpose, message_id, **extra)
