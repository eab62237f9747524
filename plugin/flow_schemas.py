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
    Setting("complaint_hold_days", "int", 14, "An open complaint holds the request at most (days)", min=1, max=30,
            help="Service first, then ask: a customer with an open ticket is asked once it is resolved, or after "
                 "this many days if it is still open, so an unresolved complaint never decides who is asked. "
                 "An open delivery problem holds the request until it is resolved."),
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
    # No holdout: a transactional email goes to every customer it concerns (plugin.flows.base CLASS_RULES).
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

USAGE_GUIDE = SettingsSchema((
    Setting("max_late_days", "float", 7, "Send a guide at most this many days late", min=1, max=60,
            help="Each guide's own delay (days after delivery) is set on the Guides page; an order whose first "
                 "guide is due longer ago than this (a backfill, a late delivery scan) gets none."),
    _holdout(),
))

REPLENISHMENT = SettingsSchema((
    Setting("lead_days", "float", 7, "Remind this many days before run-out", min=0, max=90),
    Setting("min_product_samples", "int", 5, "Re-buys needed to learn a product's cycle", min=1, max=1000),
    # Default from bench/replenishment_eval.py on CDNOW (bench/RESULTS.md): the holdout's lowest floor with a margin
    # under 35 % of reminders wasted (26.2 %). The calibration splits ask for 0.25-0.30, but their shorter windows
    # overstate waste, and at 0.25 a store of wide-gap consumables got no reminder at all.
    Setting("min_probability", "float", 0.1,
            "Remind only when a reorder in the window is at least this likely (0-1)", min=0, max=1),
    Setting("discount_enabled", "bool", False, "Add a single-use discount code"),
    Setting("discount_percent", "int", 10, "Discount (%)", min=1, max=100),
    Setting("subscribe_offer_enabled", "bool", True, "Offer Subscribe & Save"),
    _holdout(),
))

WINBACK = SettingsSchema((
    Setting("dormant_after_days", "int", 180, "Dormant after this many days without an order", min=30, max=1095),
    Setting("spend_amount", "float", 100, "Welcome-back code: spend at least (store currency)", min=0, max=100000,
            help="The code's minimum subtotal (Shopify minimumRequirement), in the store's currency."),
    Setting("save_amount", "float", 30, "Welcome-back code: save (store currency)", min=1, max=100000),
    Setting("code_valid_days", "int", 30, "The code is valid for (days)", min=1, max=365),
    Setting("reminder_enabled", "bool", True, "Remind once if the code is unused"),
    Setting("reminder_delay_days", "float", 14, "Reminder after (days)", min=1, max=90),
    Setting("reentry_days", "int", 365, "A customer enters again no sooner than (days)", min=30, max=3650),
    Setting("backfill_enabled", "bool", False, "Include customers who were already dormant",
            help="Customers dormant for longer than a week when the flow runs are added a few a day, most "
                 "recently lapsed first, until the day's win-back emails reach the daily cap."),
    Setting("backfill_daily_cap", "int", 200, "Win-back emails per day while the backfill runs", min=1,
            max=100000),
    Setting("recommendations", "int", 3, "Products recommended in the email", min=0, max=6),
    _holdout(),
))

VIP = SettingsSchema((
    Setting("tag", "text", "VIP", "Shopify customer tag while VIP",
            help="Added with tagsAdd when a customer enters the VIP segment and removed with tagsRemove when they "
                 "leave, so your own discounts and theme can recognise them."),
    Setting("perk_kind", "choice", "percent", "Welcome perk", choices=("percent", "amount", "free_shipping"),
            help="A single-use code for the new VIP only: a percentage off, a fixed amount off (in your store's "
                 "currency) or free shipping (discountCodeFreeShippingCreate, all countries)."),
    Setting("perk_percent", "int", 15, "Welcome code: discount (%)", min=0, max=100,
            help="For a percentage perk; 0 sends the welcome without a code."),
    Setting("perk_amount", "float", 20, "Welcome code: amount off (store currency)", min=0, max=100000,
            help="For an amount perk; 0 sends the welcome without a code."),
    Setting("code_valid_days", "int", 60, "The code is valid for (days)", min=1, max=365),
    Setting("perk_text", "text", "", "Your VIP perks, in your words (shown in the email)"),
    Setting("recommendations", "int", 3, "Products recommended in the email", min=0, max=6),
    _holdout(),
))

BIRTHDAY = SettingsSchema((
    Setting("metafield", "text", "", "Customer metafield with the birthday (namespace.key)",
            help="Shopify has no birthday field. Name the customer metafield your store keeps it in (e.g. "
                 "facts.birth_date, a date metafield); only month and day are used. Customers can also tell "
                 "you on the page linked from the win-back and VIP emails, and that answer wins."),
    Setting("lead_days", "int", 3, "Days before the birthday", min=0, max=30),
    Setting("send_time", "time", "09:00", "Send at (the customer's local time, HH:MM)"),
    Setting("discount_percent", "int", 20, "Birthday code: discount (%)", min=0, max=100,
            help="0 sends the greeting without a code."),
    Setting("code_valid_days", "int", 14, "The code is valid for (days)", min=1, max=90),
    Setting("recommendations", "int", 3, "Products recommended in the email", min=0, max=6),
    _holdout(),
))

# Events of the store's shopping calendar (plugin.shopping_calendar); each event may set its own discount.
SHOPPING_CALENDAR = SettingsSchema((
    Setting("lead_days", "int", 3, "Days before the event", min=0, max=30),
    Setting("send_time", "time", "09:00", "Send at (the customer's local time, HH:MM)"),
    Setting("discount_percent", "int", 15, "Event code: discount (%)", min=0, max=100,
            help="Used unless the event sets its own in the calendar; 0 sends the email without a code."),
    Setting("code_valid_days", "int", 7, "The code is valid for (days)", min=1, max=90),
    Setting("recommendations", "int", 3, "Products recommended in the email", min=0, max=6),
    _holdout(),
))

# The daily co-purchase job (plugin.recommendations); marketing templates show its products.
RECOMMENDATIONS = SettingsSchema((
    Setting("min_co_customers", "int", 3, "A pair needs this many customers who bought both", min=1, max=100000),
    Setting("min_lift", "float", 1.0, "Keep pairs whose lift over popularity exceeds", min=0, max=1000),
    Setting("per_product", "int", 10, "Products kept per product", min=1, max=50),
))

# Delivery updates (transactional): which milestones the customer hears about, and when they are held.
DELIVERY_UPDATE = SettingsSchema((
    Setting("notify_shipped", "bool", False, "Shipped",
            help="Off by default: Shopify already sends its own shipping confirmation when a fulfilment is created."),
    Setting("notify_in_transit", "bool", False, "In transit"),
    Setting("notify_out_for_delivery", "bool", True, "Out for delivery (sent at once, even in quiet hours)"),
    Setting("notify_attempted_delivery", "bool", True, "Delivery attempted"),
    Setting("notify_delayed", "bool", True, "Delayed"),
    Setting("notify_delivered", "bool", True, "Delivered"),
    Setting("notify_failure", "bool", True, "Delivery failed"),
    Setting("quiet_hours_start", "time", "21:00", "Quiet hours start (customer's local time, HH:MM)"),
    Setting("quiet_hours_end", "time", "08:00", "Quiet hours end (customer's local time, HH:MM)",
            help="Updates that arrive in quiet hours wait until they end; \"out for delivery\" goes at once."),
    Setting("max_late_hours", "float", 48, "Tell of milestones at most this many hours old", min=1, max=24 * 14,
            help="Older milestones (a backfill, a late sync) are recorded but not emailed."),
))

# Complaint tickets' service-level targets (the ticket_alert flow and plugin.tickets read them).
TICKETS = SettingsSchema((
    _sla(1, 1, "safety/counterfeit"),
    _sla(2, 24, "damaged/wrong item"),
    _sla(3, 72, "delay/other"),
))

def _business_days(name: str, label: str, default: int, help_: str = "") -> Setting:
    return Setting(name, "int", default, label, help=help_, min=0, max=60)


# Stalled and failed deliveries (plugin.flows.delivery_stalls): thresholds in business days of the store's
# calendar (its country's holidays and weekends, plugin.business_days). No holdout: the "we're on it" notice is
# transactional, and telling only some customers of a problem with their own order is no experiment to run.
DELIVERY_STALLS = SettingsSchema((
    _business_days("unfulfilled_after_business_days", "Paid but unfulfilled after (business days)", 2,
                   "A paid order with no parcel after this many business days opens a delay ticket."),
    _business_days("no_scan_after_business_days", "In transit with no carrier event for (business days)", 3,
                   "A parcel the carrier has not scanned for this many business days opens a delay ticket."),
    _business_days("lost_after_business_days", "Presumed lost after no carrier event for (business days)", 10,
                   "Past this, a silent parcel opens a second ticket of severity 2 (lost)."),
    _business_days("past_estimate_business_days", "Late once past the estimated delivery by (business days)", 1,
                   "The carrier's estimate, else the store's own history (90th percentile of transit days by "
                   "destination country and carrier)."),
    # Each kind can be switched off on its own (its threshold kept): nothing of that kind is detected or ticketed.
    Setting("detect_unfulfilled", "bool", True, "Detect paid but unfulfilled orders"),
    Setting("detect_no_scan", "bool", True, "Detect parcels with no carrier event"),
    Setting("detect_lost", "bool", True, "Detect presumed lost parcels"),
    Setting("detect_past_estimate", "bool", True, "Detect parcels past their estimated delivery"),
    Setting("detect_attempted", "bool", True, "Detect attempted deliveries"),
    Setting("detect_failed", "bool", True, "Detect failed deliveries"),
    Setting("min_history_samples", "int", 20, "Delivered parcels needed to estimate from history", min=1,
            max=100000, help="Per destination country and carrier; fewer, and no history estimate is used."),
    Setting("history_days", "int", 180, "History window for estimates (days)", min=7, max=730),
    Setting("customer_notice_enabled", "bool", True, "Tell the customer \"we're on it\" first",
            help="A transactional email in the customer's language when a problem is detected (Shopify only: "
                 "nothing goes to Amazon buyers)."),
    Setting("amazon_late_shipments", "bool", True, "Amazon: ticket late seller-fulfilled shipments",
            help="Past the latest ship date unshipped, or past the latest delivery date undelivered."),
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
    "usage_guide": USAGE_GUIDE,
    "replenishment": REPLENISHMENT,
    "winback": WINBACK,
    "vip": VIP,
    "birthday": BIRTHDAY,
    "shopping_calendar": SHOPPING_CALENDAR,
    "recommendations": RECOMMENDATIONS,
    "tickets": TICKETS,
    "delivery_stalls": DELIVERY_STALLS,
    "delivery_update": DELIVERY_UPDATE,
}


def schema_of(section: str) -> SettingsSchema | None:
    """Return the declared schema of a flow_settings section, if any."""
    return SCHEMAS.get(section)
