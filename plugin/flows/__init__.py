"""The flow catalogue: one declared module per flow (DESIGN §4), and the registry the runner and admin read.

To add a flow, write ``plugin/flows/<name>.py`` declaring ``FLOW = Flow(...)`` (see README, "Writing a flow")
and list it in ``FLOWS`` below.
"""

from __future__ import annotations

from plugin.flows import (
    amazon_review_request,
    birthday,
    cancellation,
    delivery_stalls,
    delivery_update,
    first_order,
    replenishment,
    review_reply,
    review_request,
    shopping_calendar,
    survey,
    ticket_alert,
    ticket_followup,
    usage_guide,
    vip,
    winback,
)
from plugin.flows.base import Flow

FLOWS: dict[str, Flow] = {flow.name: flow for flow in (
    review_request.FLOW, amazon_review_request.FLOW, review_reply.FLOW, survey.FLOW, replenishment.FLOW,
    ticket_alert.FLOW, winback.FLOW, vip.FLOW, birthday.FLOW, delivery_update.FLOW, delivery_stalls.FLOW,
    first_order.FLOW, cancellation.FLOW, ticket_followup.FLOW, usage_guide.FLOW, shopping_calendar.FLOW)}


def get_flow(name: str) -> Flow:
    """Return the declared flow of that name; an unknown name raises LookupError."""
    try:
        return FLOWS[name]
    except KeyError:
        raise LookupError(f"no flow named {name!r} is declared (known: {', '.join(FLOWS)})") from None

