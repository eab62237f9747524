"""The sending rules every email flow shares (settings section ``policy``; the rules: plugin.messaging.policy)."""

from __future__ import annotations

from plugin.flows.base import Setting, SettingsSchema

SECTION = "policy"
TITLE = "Sending rules"
ABOUT = "Send window in the customer's time zone, marketing frequency cap, quiet days."

SETTINGS = SettingsSchema((
    Setting("send_window_start", "time", "09:00", "Send window starts (local time, HH:MM)"),
    Setting("send_window_end", "time", "11:00", "Send window ends (local time, HH:MM)"),
    Setting("marketing_cap_count", "int", 2, "At most this many marketing emails", min=0, max=1000),
    Setting("marketing_cap_days", "float", 7, "per this many days", min=0, max=365),
    Setting("respect_holidays", "bool", True, "Skip national holidays of the customer's country"),
    Setting("ramadan_countries", "list", [], "Ramadan rule countries (ISO codes, comma-separated)"),
    Setting("ramadan_daytime_start", "time", "05:00", "Ramadan daytime starts"),
    Setting("ramadan_daytime_end", "time", "19:00", "Ramadan daytime ends"),
    Setting("fallback_locale", "text", "en", "Fallback language"),
))
