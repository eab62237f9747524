"""Tokens API 2021-03-01: createRestrictedDataToken (an RDT usable like the seller's access token)."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from typing import Any

from .context import Ctx
from .http import ApiError, json_body
from .lwa import AccessToken

METHODS = ("GET", "PUT", "POST", "DELETE", "PATCH")
RDT_SECONDS = 3600


def _invalid(details: str) -> ApiError:
    # Wording of the model's own 400 sandbox case (tokens_2021-03-01.json).
    return ApiError(400, "InvalidRequest", "Request is missing or has invalid parameters", details)


def create_rdt(ctx: Ctx) -> tuple[int, Any]:
    """POST /tokens/2021-03-01/restrictedDataToken."""
    body = json_body(ctx.request.get_data())
    resources = body.get("restrictedResources")
    if not isinstance(resources, list) or not resources:
        raise _invalid("Resource not provided.")
    for resource in resources:
        if not isinstance(resource, dict) or resource.get("method") not in METHODS:
            raise _invalid("Resource not provided.")
        path = resource.get("path")
        if not isinstance(path, str) or not re.match(r"^/[A-Za-z0-9/{}._~-]+$", path):
            raise _invalid("Resource not provided.")
    token = "Atz.sprdt|" + secrets.token_urlsafe(48)
    grants = tuple((r["method"], r["path"]) for r in resources)
    ctx.sandbox.lwa.access_tokens[token] = AccessToken(token, ctx.client_id, ctx.seller.seller_id, "rdt",
                                                       ctx.now + timedelta(seconds=RDT_SECONDS), grants)
    return 200, {"restrictedDataToken": token, "expiresIn": RDT_SECONDS}
