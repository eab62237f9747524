"""Mint and verify App Bridge session tokens (ID tokens) the way Shopify signs them.

Claims per https://shopify.dev/docs/apps/build/authentication-authorization/session-tokens :
iss ``https://<shop>/admin``, dest ``https://<shop>``, aud = client id, sub = user id, exp/nbf/iat,
jti, sid; HS256 with the app's client secret; lifetime one minute.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

import jwt

SESSION_TOKEN_TTL = timedelta(seconds=60)


def mint_session_token(shop: str, client_id: str, client_secret: str, now: datetime, user_id: int = 1,
                       ttl: timedelta = SESSION_TOKEN_TTL, sid: str | None = None,
                       jti: str | None = None) -> str:
    """Return a signed session token for ``shop`` (a ``*.myshopify.com`` domain)."""
    issued = int(now.timestamp())
    claims = {
        "iss": f"https://{shop}/admin",
        "dest": f"https://{shop}",
        "aud": client_id,
        "sub": str(user_id),
        "exp": issued + int(ttl.total_seconds()),
        "nbf": issued,
        "iat": issued,
        "jti": jti or secrets.token_hex(16),
        "sid": sid or secrets.token_hex(16),
    }
    return jwt.encode(claims, client_secret, algorithm="HS256")


def verify_session_token(token: str, client_id: str, client_secret: str, now: datetime,
                         leeway: int = 5) -> dict[str, Any]:
    """Return the claims of a valid token; raise ``jwt.InvalidTokenError`` otherwise."""
    claims = jwt.decode(token, client_secret, algorithms=["HS256"], audience=client_id,
                        options={"verify_exp": False, "verify_nbf": False, "verify_iat": False,
                                 "require": ["iss", "dest", "aud", "sub", "exp", "nbf"]})
    stamp = now.timestamp()
    if claims["exp"] + leeway <= stamp:
        raise jwt.ExpiredSignatureError("Signature has expired")
    if claims["nbf"] - leeway > stamp:
        raise jwt.ImmatureSignatureError("The token is not yet valid (nbf)")
    if not str(claims["iss"]).startswith(str(claims["dest"])):
        raise jwt.InvalidIssuerError("iss and dest name different shops")
    return claims
