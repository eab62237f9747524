"""Every flow_settings section's schema, declared once: the settings, their defaults, bounds and admin words.

The flow modules take their ``settings=`` from here; plugin.config checks app.toml's [flows.*] overrides and
plugin.flow_settings reads the defaults against the same declarations, without importing any flow.
"""

from __future__ import annotations

from plugin.settings_schema import Setting, SettingsSchema


def _days(name: str, label: str, default: float, help_: str = "") -> Setting:
    return Setting(name, "float", default, label, help=help_, min=0, max=365)


def _sla(severity: int, default: float, what: str) -> Setting:
    return Setting(f"sla_hours_severity_{severity}", "float", default, f"SLA hours, severity {severity} ({what})",
                   min=0.1, max=24 * 90)


def _holdout() -> Setting:
    """Return the holdout share every customer-facing flow declares (DESIGN §4: proof of lift)."""
    return Setting("holdout_percent", "int", 0, "Hold out this share of eligible customers (%)",
                   help="Chosen by a stable hash of store, customer and flow; held-out rows are skipped with the "
                        "reason holdout so the report can compare.", min=0, max=50)


# The sending rules every email flow shares (the rules themselves: plugin.messaging.policy).
POLICY = SettingsSchema((
    Setting("send_window_start", "time", "09:00", "Send window starts (local time, HH:MM)"),
    Setting("send_window_end", "time", "11:00", "Send window ends (local time, HH:MM)"),
    Setting("marketing_cap_count", "int", 2, "At most this many marketing emails", min=0, max=1000),
    Setting("marketing_cap_days", "float", 7, "per this many days", min=0, max=365),
    Setting("respect_holidays", "bool", True, "Skip national holidays of the customer's country"),
    Setting("ramadan_countries", "list", [], "Ramadan rule countries (ISO codes, comma-separated)"),
    Setting("ramadan_daytime_start", "time", "05:00", "Ramadan daytime starts"),
    Setting("ramadan_daytime_end", "time", "19:00", "Ramadan daytime ends"),
    Setting("fallback_locale", "text", "en", "Fallback language"),
    Setting("message_orders_before_reinstall", "bool", False,
            "After a reinstall, also message about orders from before it",
            help="Off (the default): after the app is installed again, no review request, survey or reminder "
                 "goes out about an order fulfilled or placed before that install. Uninstalling erases the "
                 "message log 48 hours later (shop/redact), so turning this on can ask customers again about "
                 "orders they were already asked about."),
))

REVIEW_REQUEST = SettingsSchema((
    _days("delay_days", "Days after delivery", 7),
    _days("fallback_after_fulfilment_days", "Days after fulfilment when the carrier gives no delivery date", 7),
    Setting("reminder_enabled", "bool", True, "Send one reminder"),
    _days("reminder_delay_days", "Reminder after (days)", 7),
    Setting("incentive_text", "text", "", "Incentive (disclosed in the email)",
            help="Shopify only; the email states it openly (DESIGN §1)."),
    # No holdout: every eligible customer is asked (a holdout would be selective solicitation).
))

# No holdout: Amazon forbids selective solicitation.
AMAZON_REVIEW_REQUEST = SettingsSchema((
    Setting("delay_days_after_window_opens", "float", 0, "Days after Amazon's window opens", min=0, max=25),
    Setting("estimated_transit_days", "float", 3, "Transit days when Amazon gives no delivery window", min=0, max=20,
            help="Many FBA orders carry a ship-by date but no deliver-by window. Their delivery is estimated as the "
                 "latest ship date plus these days; Amazon is asked daily from 5 to 30 days after that estimate "
                 "and the request goes out only when Amazon offers it."),
))

# A public reply on the review, not a message to the customer: no holdout.
REVIEW_REPLY = SettingsSchema((
    Setting("auto_reply_min_rating", "int", 4, "Auto-reply from this rating up", min=1, max=6,
            help="6 turns automatic replies off: every review gets a draft to approve."),
))

SURVEY = SettingsSchema((
    Setting("kind", "choice", "nps", "Survey kind", choices=("nps", "csat"),
            message="Survey kind must be nps or csat"),
    Setting("delay_days", "float", 10, "Days after delivery", min=0, max=365),
    # A detractor's ticket is followed through by ticket_followup, like every other ticket.
    _holdout(),
))

FIRST_ORDER = SettingsSchema((
    Setting("delay_hours", "float", 2, "Hours after the order", min=0, max=72,
            help="Shopify's order confirmation goes at once; this welcome follows it, it does not repeat it."),
    Setting("history_days", "int", 180, "Shipping times learned from this many days of orders", min=7, max=730),
    _holdout(),
))

CANCELLATION = SettingsSchema((
    Setting("delay_hours", "float", 1, "Hours after the cancellation", min=0, max=72),
    Setting("ask_enabled", "bool", True, "Ask customers who cancelled why (one-click reasons)"),
    Setting("declined_enabled", "bool", True, "Tell customers whose payment was declined"),
    Setting("ticket_reasons", "list", ["delivery_too_slow"], "Answers that open a ticket",
            help="Codes: found_cheaper, ordered_by_mistake, delivery_too_slow, changed_mind, other."),
    _holdout(),
))

TICKET_FOLLOWUP = SettingsSchema((
    Setting("followup_enabled", "bool", True, "Send \"what we changed\" after a ticket is resolved"),
    Setting("followup_days", "float", 7, "Follow-up after resolution (days)", min=0, max=365),
    Setting("comeback_enabled", "bool", True, "Send a come-back offer (marketing: consent required)"),
    Setting("comeback_days", "float", 30, "Come-back offer after (days)", min=0, max=365),
    Setting("comeback_discount_percent", "int", 10, "Come-back discount (%)", min=0, max=100,
            help="A single-use code for this customer, created in Shopify when the offer is sent; 0 sends none."),
    _holdout(),
))

REPLENISHMENT = SettingsSchema((
    Setting("lead_days", "float", 7, "Remind this many days before run-out", min=0, max=90),
    Setting("min_product_samples", "int", 5, "Re-buys needed to learn a product's cycle", min=1, max=1000),
    Setting("discount_enabled", "bool", False, "Add a single-use discount code"),
    Setting("discount_percent", "int", 10, "Discount (%)", min=1, max=100),
    Setting("subscribe_offer_enabled", "bool", True, "Offer Subscribe & Save"),
    _holdout(),
))

# Complaint tickets' service-level targets (the ticket_alert flow and plugin.tickets read them).
TICKETS = SettingsSchema((
    _sla(1, 1, "safety/counterfeit"),
    _sla(2, 24, "damaged/wrong item"),
    _sla(3, 72, "delay/other"),
))

SCHEMAS: dict[str, SettingsSchema] = {
    "policy": POLICY,
    "review_request": REVIEW_REQUEST,
    "amazon_review_request": AMAZON_REVIEW_REQUEST,
    "review_reply": REVIEW_REPLY,
    "survey": SURVEY,
    "first_order": FIRST_ORDER,
    "cancellation": CANCELLATION,
    "ticket_followup": TICKET_FOLLOWUP,
    "replenishment": REPLENISHMENT,
    "tickets": TICKETS,
}


def schema_of(section: str) -> SettingsSchema | None:
    """Return the declared schema of a flow_settings section, if any."""
    return SCHEMAS.get(section)
