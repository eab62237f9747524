"""The flow catalogue: one declared module per flow (DESIGN §4), and the registry the runner and admin read.

To add a flow, write ``plugin/flows/<name>.py`` declaring ``FLOW = Flow(...)`` (see README, "Writing a flow")
and list it in ``FLOWS`` below.
"""

from __future__ import annotations

from plugin.flows import (
    amazon_review_request,
    replenishment,
    review_reply,
    review_request,
    sending_rules,
    survey,
    ticket_alert,
)
from plugin.flows.base import Flow, SettingsSchema

FLOWS: dict[str, Flow] = {flow.name: flow for flow in (
    review_request.FLOW, amazon_review_request.FLOW, review_reply.FLOW, survey.FLOW, replenishment.FLOW,
    ticket_alert.FLOW)}


def get_flow(name: str) -> Flow:
    """Return the declared flow of that name; an unknown name raises LookupError."""
    try:
        return FLOWS[name]
    except KeyError:
        raise LookupError(f"no flow named {name!r} is declared (known: {', '.join(FLOWS)})") from None


def settings_schema(section: str) -> SettingsSchema | None:
    """Return the settings schema of a flow_settings section (a flow's, or the sending rules'), if declared."""
    if section == sending_rules.SECTION:
        return sending_rules.SETTINGS
    for flow in FLOWS.values():
        if flow.settings_section == section:
            return flow.settings
    return None
