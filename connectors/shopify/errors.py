"""Typed errors of the Shopify Admin GraphQL connector, so callers can react to each kind.

Status and error codes: https://shopify.dev/docs/api/admin-graphql#status-and-error-codes
"""

from __future__ import annotations

from typing import Any

from connectors.errors import AuthRefused, BadResponse, ConnectorError, RateLimited, RequestRejected, TransientError


class ShopifyError(ConnectorError):
    """Base class of every Shopify connector error."""


class ShopifyAuthError(ShopifyError, AuthRefused):
    """Shopify refused the access token (401/403): the store needs to be reinstalled or its token refreshed."""

    def __init__(self, message: str, status: int):
        super().__init__(message, status=status)


class ShopifyThrottledError(ShopifyError, RateLimited):
    """Shopify kept throttling (GraphQL THROTTLED or HTTP 429) after every retry."""


class ShopifyServerError(ShopifyError, TransientError):
    """Shopify kept failing (5xx, timeout, dropped connection) after every retry; ``status`` None without answer."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message, status=status)


class ShopifyBadResponse(ShopifyError, BadResponse):
    """Shopify kept answering something that is not the documented JSON."""


class ShopifyGraphQLError(ShopifyError, RequestRejected):
    """The request itself was refused (invalid document, ACCESS_DENIED, MAX_COST_EXCEEDED ...); retrying won't help."""

    def __init__(self, message: str, errors: list[dict[str, Any]]):
        super().__init__(message)
        self.errors = errors

    @property
    def codes(self) -> set[str]:
        """Return the ``extensions.code`` of every error."""
        return {str((e.get("extensions") or {}).get("code")) for e in self.errors}


class ShopifyUserError(ShopifyError, RequestRejected):
    """A mutation answered with ``userErrors`` (e.g. OPERATION_IN_PROGRESS, TAKEN)."""

    def __init__(self, message: str, user_errors: list[dict[str, Any]]):
        super().__init__(message)
        self.user_errors = user_errors

    @property
    def codes(self) -> set[str]:
        """Return the ``code`` of every user error."""
        return {str(e.get("code")) for e in self.user_errors}


def raise_user_errors(payload: dict[str, Any] | None, mutation: str) -> dict[str, Any]:
    """Return a mutation's payload, or raise ShopifyUserError when it carries userErrors."""
    if payload is None:
        raise ShopifyBadResponse(f"{mutation} returned no payload")
    errors = payload.get("userErrors") or []
    if errors:
        text = "; ".join(str(e.get("message")) for e in errors)
        raise ShopifyUserError(f"{mutation}: {text}", errors)
    return payload
