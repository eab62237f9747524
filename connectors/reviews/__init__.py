"""Review-app connectors (Judge.me first): plain records out, public replies in."""

from connectors.records import PostedReply, ReviewRecord
from connectors.reviews.judgeme import (
    JudgemeAuthError,
    JudgemeBadResponse,
    JudgemeClient,
    JudgemeError,
    JudgemePaginationCapped,
    JudgemeRateLimited,
    JudgemeRequestRejected,
    JudgemeServerError,
    RetryPolicy,
)

__all__ = [
    "JudgemeAuthError",
    "JudgemeBadResponse",
    "JudgemeClient",
    "JudgemeError",
    "JudgemePaginationCapped",
    "JudgemeRateLimited",
    "JudgemeRequestRejected",
    "JudgemeServerError",
    "PostedReply",
    "ReviewRecord",
    "RetryPolicy",
]
