"""The sending rules every email flow shares (settings section ``policy``; the rules: plugin.messaging.policy)."""

from __future__ import annotations

from plugin import flow_schemas

SECTION = "policy"
TITLE = "Sending rules"
ABOUT = "Send window in the customer's time zone, marketing frequency cap, quiet days."

SETTINGS = flow_schemas.POLICY
