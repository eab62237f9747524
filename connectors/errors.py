"""The one error tree of every connector: what went wrong, and whether another attempt can help.

Each marketplace module names its own errors (``ShopifyServerError``, ``QuotaExceeded``, ``JudgemeAuthError``
...) as subclasses of both its own base and one of the kinds below, so a caller may catch either
``ShopifyError`` or ``TransientError``. ``retryable`` and ``retry_after`` are what ``base.retry`` reads.
"""

from __future__ import annotations


class ConnectorError(Exception):
    """A marketplace call failed; ``status`` is the HTTP status when there was an answer.

    ``retryable`` says whether repeating the same request can help; ``retry_after`` is the delay in
    seconds the marketplace asked for, if it said one.
    """

    retryable: bool = False

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None,
                 retryable: bool | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        if retryable is not None:
            self.retryable = retryable


class AuthRefused(ConnectorError):
    """The marketplace refused the credentials or the permission for this call (401/403)."""


class RateLimited(ConnectorError):
    """The marketplace throttled the call (429, THROTTLED): wait and try again."""

    retryable = True


class TransientError(ConnectorError):
    """A 5xx, a timeout or a dropped connection: the marketplace's side or the network."""

    retryable = True


class BadResponse(ConnectorError):
    """The answer is not the documented shape (malformed JSON, missing data); a new attempt usually mends it."""

    retryable = True


class RequestRejected(ConnectorError):
    """The request itself is wrong (4xx, GraphQL or user errors): the same request will fail again."""
