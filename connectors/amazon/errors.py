"""Typed SP-API errors: what went wrong, and whether trying again can help.

Error bodies are Amazon's ``{"errors": [{"code", "message", "details"}]}``; see
https://developer-docs.amazon.com/sp-api/docs/response-format
"""

from __future__ import annotations

from connectors.errors import AuthRefused, ConnectorError, RateLimited, RequestRejected, TransientError


class AmazonError(ConnectorError):
    """An SP-API call failed; ``status`` is the HTTP status (0 for transport failures)."""

    status: int

    def __init__(self, message: str, *, status: int = 0, code: str | None = None, operation: str = ""):
        super().__init__(message, status=status)
        self.code = code
        self.operation = operation


class AuthError(AmazonError, AuthRefused):
    """Login with Amazon refused the app credentials or the seller's refresh token."""

    def __init__(self, message: str, *, error: str = "", status: int = 0, operation: str = "lwa"):
        super().__init__(message, status=status, code=error, operation=operation)
        self.error = error


class AccessDenied(AmazonError, AuthRefused):
    """403: the token is valid but the seller has not granted the role this operation needs."""


class NotFound(AmazonError, RequestRejected):
    """404: the order, report or document does not exist for this seller."""


class InvalidInput(AmazonError, RequestRejected):
    """400 (or another 4xx): the request itself is wrong; retrying the same request cannot help."""


class QuotaExceeded(AmazonError, RateLimited):
    """429 after every retry: the operation's usage plan is exhausted."""


class ServerError(AmazonError, TransientError):
    """5xx, a malformed body or a dropped connection / timeout: Amazon's side or the network."""


def role_hint(operation: str) -> str:
    """Name the SP-API role an operation needs (for clear connection-check messages)."""
    if operation.startswith("solicitations"):
        return "Buyer Solicitation"
    if operation.startswith("reports"):
        return "Selling Partner Insights"
    if operation.startswith("messaging"):
        return "Buyer Communication"
    if operation.startswith("sellers"):
        return "Selling Partner Insights"
    return "Inventory and Order Tracking"
