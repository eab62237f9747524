"""Login with Amazon: app credentials, refresh tokens per seller, access tokens valid 3600 s.

``POST /auth/o2/token`` with the grants SP-API apps use (refresh_token, client_credentials for grantless
operations, authorization_code for website authorization). Error bodies follow OAuth 2.0 (RFC 6749 §5.2)
as LWA sends them: https://developer-docs.amazon.com/sp-api/docs/connecting-to-the-selling-partner-api
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from werkzeug.wrappers import Request, Response

ACCESS_TOKEN_SECONDS = 3600
GRANTLESS_SCOPES = ("sellingpartnerapi::notifications", "sellingpartnerapi::client_credential:rotation")


@dataclass
class AccessToken:
    """An issued access token: whose it is (seller, or None for grantless) and until when."""

    token: str
    client_id: str
    seller_id: str | None
    scope: str | None
    expires_at: datetime
    resources: tuple[tuple[str, str], ...] = ()  # a restricted data token's (method, path) grants

    def allows(self, method: str, path: str) -> bool:
        """Tell whether the token may call ``method path`` (an RDT only its own resources)."""
        if self.scope != "rdt":
            return True
        return any(m == method and _path_matches(pattern, path) for m, pattern in self.resources)


def _path_matches(pattern: str, path: str) -> bool:
    """Match a resource path whose ``{name}`` segments stand for any single segment."""
    want, got = pattern.strip("/").split("/"), path.strip("/").split("/")
    return len(want) == len(got) and all(w == g or (w.startswith("{") and w.endswith("}"))
                                         for w, g in zip(want, got, strict=True))


class LwaError(Exception):
    """An OAuth error answer from the token endpoint."""

    def __init__(self, status: int, error: str, description: str):
        super().__init__(f"{error}: {description}")
        self.status = status
        self.error = error
        self.description = description


class Lwa:
    """The token authority: apps, refresh tokens, authorization codes and access tokens."""

    def __init__(self, clock: Any):
        self.clock = clock
        self.apps: dict[str, str] = {}  # client_id -> client_secret
        self.refresh_tokens: dict[str, tuple[str, str]] = {}  # refresh token -> (client_id, seller_id)
        self.auth_codes: dict[str, tuple[str, str, datetime]] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self._lock = threading.Lock()

    def register_app(self, client_id: str | None = None, client_secret: str | None = None) -> tuple[str, str]:
        """Register LWA app credentials (random when not given) and return them."""
        client_id = client_id or "amzn1.application-oa2-client." + secrets.token_hex(16)
        client_secret = client_secret or "amzn1.oa2-cs.v1." + secrets.token_hex(32)
        with self._lock:
            self.apps[client_id] = client_secret
        return client_id, client_secret

    def issue_refresh_token(self, client_id: str, seller_id: str) -> str:
        """Authorise ``client_id`` for ``seller_id`` (self-authorisation) and return a refresh token."""
        if client_id not in self.apps:
            raise KeyError(f"unknown LWA client {client_id}")
        token = "Atzr|" + secrets.token_urlsafe(48)
        with self._lock:
            self.refresh_tokens[token] = (client_id, seller_id)
        return token

    def issue_auth_code(self, client_id: str, seller_id: str) -> str:
        """Return an ``spapi_oauth_code`` for website authorisation (valid 5 minutes)."""
        code = "ANsz" + secrets.token_urlsafe(16)
        with self._lock:
            self.auth_codes[code] = (client_id, seller_id, self.clock.now() + timedelta(minutes=5))
        return code

    def revoke(self, refresh_token: str) -> None:
        """Revoke a refresh token and every access token it produced."""
        with self._lock:
            owner = self.refresh_tokens.pop(refresh_token, None)
            if owner:
                for key in [k for k, v in self.access_tokens.items()
                            if (v.client_id, v.seller_id) == owner]:
                    del self.access_tokens[key]

    def lookup(self, token: str) -> AccessToken | None:
        """Return the access token record, or None when unknown."""
        return self.access_tokens.get(token)

    def expire_all(self) -> None:
        """Expire every access token now (tests of the refresh path)."""
        now = self.clock.now()
        with self._lock:
            for record in self.access_tokens.values():
                record.expires_at = now

    def _mint(self, client_id: str, seller_id: str | None, scope: str | None) -> AccessToken:
        prefix = "Atza|" if seller_id else "Atc|"
        record = AccessToken(prefix + secrets.token_urlsafe(64), client_id, seller_id, scope,
                             self.clock.now() + timedelta(seconds=ACCESS_TOKEN_SECONDS))
        with self._lock:
            self.access_tokens[record.token] = record
        return record

    def grant(self, form: dict[str, str]) -> dict[str, Any]:
        """Run one token request and return the JSON answer, or raise LwaError."""
        grant_type = form.get("grant_type", "")
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        if not grant_type:
            raise LwaError(400, "invalid_request", "The request is missing a required parameter : grant_type")
        if grant_type not in ("refresh_token", "client_credentials", "authorization_code"):
            raise LwaError(400, "unsupported_grant_type", f"The authorization grant type {grant_type} "
                           "is not supported by the authorization server")
        if not client_id or self.apps.get(client_id) != secret:
            raise LwaError(401, "invalid_client", "Client authentication failed")
        if grant_type == "client_credentials":
            scope = form.get("scope", "")
            if scope not in GRANTLESS_SCOPES:
                raise LwaError(400, "invalid_scope", "The request has an invalid parameter : scope")
            record = self._mint(client_id, None, scope)
            return {"access_token": record.token, "scope": scope, "token_type": "bearer",
                    "expires_in": ACCESS_TOKEN_SECONDS}
        if grant_type == "authorization_code":
            code = form.get("code", "")
            with self._lock:
                entry = self.auth_codes.pop(code, None)
            if entry is None or entry[0] != client_id or entry[2] < self.clock.now():
                raise LwaError(400, "invalid_grant", "The request has an invalid grant parameter : code")
            refresh = self.issue_refresh_token(client_id, entry[1])
            record = self._mint(client_id, entry[1], None)
            return {"access_token": record.token, "refresh_token": refresh, "token_type": "bearer",
                    "expires_in": ACCESS_TOKEN_SECONDS}
        refresh = form.get("refresh_token", "")
        if not refresh:
            raise LwaError(400, "invalid_request",
                           "The request is missing a required parameter : refresh_token")
        owner = self.refresh_tokens.get(refresh)
        if owner is None or owner[0] != client_id:
            raise LwaError(400, "invalid_grant", "The request has an invalid grant parameter : refresh_token")
        record = self._mint(client_id, owner[1], None)
        return {"access_token": record.token, "refresh_token": refresh, "token_type": "bearer",
                "expires_in": ACCESS_TOKEN_SECONDS}

    def token_endpoint(self, request: Request) -> Response:
        """Answer ``POST /auth/o2/token`` (form-encoded or JSON body)."""
        if request.method != "POST":
            return _json(405, {"error": "invalid_request", "error_description": "Method not allowed"})
        if request.mimetype == "application/json":
            try:
                form = {k: str(v) for k, v in json.loads(request.get_data() or b"{}").items()}
            except (ValueError, AttributeError):
                return _json(400, {"error": "invalid_request", "error_description": "Malformed JSON body"})
        else:
            form = request.form.to_dict()
        try:
            return _json(200, self.grant(form))
        except LwaError as exc:
            return _json(exc.status, {"error_description": exc.description, "error": exc.error})


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json;charset=UTF-8",
                    headers={"Cache-Control": "no-store", "Pragma": "no-cache"})
