"""Solicitations API v1: ask whether ``productReviewAndSellerFeedback`` is offered, and send it.

Amazon allows one solicitation per order, from 5 days after EarliestDeliveryDate to 30 days after
LatestDeliveryDate, and answers a second request with 403 "not available".
https://developer-docs.amazon.com/sp-api/docs/solicitations-api-v1-reference
"""

from __future__ import annotations

from dataclasses import dataclass

from .client import SolicitationsApi, SpApiSession
from .errors import AccessDenied

ACTION = "productReviewAndSellerFeedback"
GET_ACTIONS = "solicitations.getSolicitationActionsForOrder"
CREATE = "solicitations.createProductReviewAndSellerFeedbackSolicitation"


@dataclass(frozen=True)
class SendResult:
    """What Amazon said: ``sent``, or ``not_available`` (already solicited / refused) with its message."""

    outcome: str
    message: str = ""


def review_request_offered(session: SpApiSession, order_id: str, marketplace_id: str) -> bool:
    """Tell whether Amazon currently offers the review solicitation for this order."""
    api = session.api(SolicitationsApi)
    response = session.call(GET_ACTIONS, api.get_solicitation_actions_for_order, order_id,
                            marketplaceIds=marketplace_id)
    links = (response.payload or {}).get("_links") or {}
    return any((a.get("name") == ACTION or a.get("href", "").split("?")[0].endswith("/" + ACTION))
               for a in links.get("actions") or [])


def send_review_request(session: SpApiSession, order_id: str, marketplace_id: str) -> SendResult:
    """Send the solicitation once; a 403 becomes ``not_available``. Ambiguous failures are not retried.

    A 5xx or dropped connection may hide a solicitation Amazon did record, so it is raised rather than
    repeated; the caller reconciles through ``review_request_offered``.
    """
    api = session.api(SolicitationsApi)
    try:
        session.call(CREATE, api.create_product_review_and_seller_feedback_solicitation, order_id,
                     marketplaceIds=marketplace_id, retry_ambiguous=False)
    except AccessDenied as exc:
        return SendResult("not_available", str(exc))
    return SendResult("sent")
