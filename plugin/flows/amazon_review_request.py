"""Amazon review solicitations, declared: Amazon's own request, once per order inside Amazon's window.

Sent through SP-API Solicitations by its own job and channel (not by the flow runner); declared here so the
admin form, `aftercare flows list` and the class rules see it like every other flow.
"""

from __future__ import annotations

from plugin.flows.base import Exit, Flow, Setting, SettingsSchema
from plugin.messaging import reasons

FLOW = Flow(
    name="amazon_review_request",
    title="Amazon review solicitations",
    about="Amazon's own review request, once per order inside Amazon's window.",
    flow_class="review_request",
    platforms=("amazon",),
    trigger="due query: orders whose solicitation window (5-30 days after delivery) is open",
    audience=("every order (Amazon forbids selective solicitation)",),
    timing="the first day the order is eligible, plus delay_days_after_window_opens",
    steps=(),
    exits=(
        Exit(reasons.ORDER_CANCELLED, "the order was cancelled"),
        Exit(reasons.ORDER_REFUNDED, "the order was refunded"),
        Exit(reasons.ORDER_RETURNED, "the order was returned"),
    ),
    idempotency_key="<store>:amazon_review_request:order=<order id>",
    settings=SettingsSchema((
        Setting("delay_days_after_window_opens", "float", 0, "Days after Amazon's window opens", min=0, max=25),
    )),
    # No holdout: Amazon forbids selective solicitation.
    customer_facing=False,
    runs_here=False,
)
