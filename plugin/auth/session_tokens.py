"""Verify App Bridge session tokens (id tokens) for the embedded admin and token exchange.

https://shopify.dev/docs/apps/build/authentication-authorization/session-tokens/set-up-session-tokens
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlparse

import jwt

from plugin.auth.shop_domain import normalise_shop_domain

LEEWAY_SECONDS = 10


class InvalidSessionToken(ValueError):
    """The session token is missing, forged, expired or for another app or shop."""


@dataclass(frozen=True)
class SessionClaims:
    """What a verified session token tells us."""

    shop: str
    user_id: str | None
    session_id: str | None
    expires_at: datetime
    token: str


def verify_session_token(token: str, api_key: str, api_secret: str, now: datetime,
                         leeway: int = LEEWAY_SECONDS) -> SessionClaims:
    """Check signature (HS256, app secret), audience, expiry/nbf against ``now``, and iss/dest hosts."""
    if not token:
        raise InvalidSessionToken("missing session token")
    try:
        # Time checks are done below against the injected clock, not the wall clock.
        claims = jwt.decode(token, api_secret, algorithms=["HS256"], audience=api_key,
                            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False,
                                     "require": ["iss", "dest", "aud", "exp", "nbf"]})
    except jwt.PyJWTError as exc:
        raise InvalidSessionToken(f"invalid session token: {exc}") from exc
    ts = now.timestamp()
    if ts > float(claims["exp"]) + leeway:
        raise InvalidSessionToken("session token expired")
    if ts + leeway < float(claims["nbf"]):
        raise InvalidSessionToken("session token not yet valid")
    dest_host = urlparse(str(claims["dest"])).hostname or ""
    iss_host = urlparse(str(claims["iss"])).hostname or ""
    if not dest_host or dest_host != iss_host:
        raise InvalidSessionToken("session token issuer and destination differ")
    shop = normalise_shop_domain(dest_host)
    if shop is None:
        raise InvalidSessionToken("session token destination is not a shop domain")
    return SessionClaims(shop=shop, user_id=str(claims["sub"]) if claims.get("sub") else None,
                         session_id=claims.get("sid"), expires_at=datetime.fromtimestamp(
                             float(claims["exp"]), tz=now.tzinfo), token=token)
