"""Flows page: switch flows on and off, edit their settings, edit templates per locale with a live preview,
and send a test email to the merchant through the outbox."""

from __future__ import annotations

from typing import Any

from flask import abort, request
from sqlalchemy import delete, select

from plugin import flow_settings, get_clock, get_config
from plugin.admin.blueprint import bp, ctx, done, failed, json_response, page
from plugin.admin.overview import overview_cache
from plugin.config import ConfigError
from plugin.db import get_session
from plugin.messaging import locales, templates
from plugin.messaging.outbox import enqueue, idempotency_key
from plugin.models import AdminUser, Merchant, Template

FLOWS: dict[str, dict[str, str]] = {
    "review_request": {"title": "Review requests", "platform": "shopify",
                       "about": "Ask every customer for a review after delivery, with one reminder."},
    "amazon_review_request": {"title": "Amazon review solicitations", "platform": "amazon",
                              "about": "Amazon's own review request, once per order inside Amazon's window."},
    "review_reply": {"title": "Review replies", "platform": "shopify",
                     "about": "Thank 4-5 star reviews automatically; draft replies to 1-3 stars for approval."},
    "survey": {"title": "Feedback survey", "platform": "shopify",
               "about": "NPS or CSAT after delivery; detractors open a ticket, then a follow-up and an offer."},
    "replenishment": {"title": "Replenishment reminders", "platform": "shopify",
                      "about": "Remind customers who agreed to marketing before a consumable runs out."},
    "tickets": {"title": "Complaint tickets", "platform": "any",
                "about": "Service-level targets for resolving complaints, by severity."},
    "policy": {"title": "Sending rules", "platform": "any",
               "about": "Send window in the customer's time zone, marketing frequency cap, quiet days."},
}
LABELS = {
    "enabled": "Enabled", "delay_days": "Days after delivery", "fallback_after_fulfilment_days":
    "Days after fulfilment when the carrier gives no delivery date", "reminder_enabled": "Send one reminder",
    "reminder_delay_days": "Reminder after (days)", "incentive_text": "Incentive (disclosed in the email)",
    "delay_days_after_window_opens": "Days after Amazon's window opens", "auto_reply_min_rating":
    "Auto-reply from this rating up", "kind": "Survey kind (nps or csat)", "followup_days":
    "Follow-up after resolution (days)", "comeback_days": "Come-back offer after (days)",
    "comeback_discount_percent": "Come-back discount (%)", "lead_days": "Remind this many days before run-out",
    "min_product_samples": "Re-buys needed to learn a product's cycle", "discount_enabled":
    "Add a single-use discount code", "discount_percent": "Discount (%)", "subscribe_offer_enabled":
    "Offer Subscribe & Save", "sla_hours_severity_1": "SLA hours, severity 1 (safety/counterfeit)",
    "sla_hours_severity_2": "SLA hours, severity 2 (damaged/wrong item)", "sla_hours_severity_3":
    "SLA hours, severity 3 (delay/other)", "send_window_start": "Send window starts (local time, HH:MM)",
    "send_window_end": "Send window ends (local time, HH:MM)", "marketing_cap_count":
    "At most this many marketing emails", "marketing_cap_days": "per this many days", "respect_holidays":
    "Skip national holidays of the customer's country", "ramadan_countries":
    "Ramadan rule countries (ISO codes, comma-separated)", "ramadan_daytime_start": "Ramadan daytime starts",
    "ramadan_daytime_end": "Ramadan daytime ends", "fallback_locale": "Fallback language",
}
TEMPLATE_FLOWS = ("review_request", "survey", "replenishment")


def _store_or_redirect() -> Any:
    """Return the store a flow page edits, or a redirect to Settings when the merchant has none yet."""
    store = ctx().single_store()
    if store is None:
        return None, done("admin.settings", "Connect a store first; flows run per store.")
    return store, None


def _flow_or_404(flow: str) -> str:
    if flow not in FLOWS:
        abort(404)
    return flow


def parse_settings(flow: str, form: Any) -> dict[str, Any]:
    """Turn a settings form into typed values following the types of the flow's defaults."""
    base = flow_settings.defaults(get_config(), flow)
    changes: dict[str, Any] = {}
    for key, default in base.items():
        if isinstance(default, bool):
            changes[key] = form.get(key) in ("on", "true", "1")
            continue
        if key not in form:
            continue
        raw = (form.get(key) or "").strip()
        if isinstance(default, int):
            try:
                changes[key] = int(raw)
            except ValueError as exc:
                raise ConfigError(f"{LABELS.get(key, key)} must be a whole number") from exc
        elif isinstance(default, float):
            try:
                changes[key] = float(raw)
            except ValueError as exc:
                raise ConfigError(f"{LABELS.get(key, key)} must be a number") from exc
        elif isinstance(default, list):
            changes[key] = [p.strip().upper() for p in raw.replace(";", ",").split(",") if p.strip()]
        else:
            changes[key] = raw
    if "kind" in changes and changes["kind"] not in ("nps", "csat"):
        raise ConfigError("Survey kind must be nps or csat")
    for key in ("send_window_start", "send_window_end", "ramadan_daytime_start", "ramadan_daytime_end"):
        if key in changes and not _is_hhmm(changes[key]):
            raise ConfigError(f"{LABELS[key]} must be a time like 09:00")
    return changes


def _is_hhmm(value: str) -> bool:
    parts = value.split(":")
    return len(parts) == 2 and all(p.isdigit() for p in parts) and int(parts[0]) < 24 and int(parts[1]) < 60


@bp.get("/flows")
def flows() -> Any:
    """List the flows of the store with their state."""
    ctx()
    store, redirect_to = _store_or_redirect()
    if redirect_to is not None:
        return redirect_to
    session = get_session()
    config = get_config()
    rows = []
    for name, meta in FLOWS.items():
        settings = flow_settings.effective(session, config, store.id, name)
        applies = meta["platform"] in ("any", store.platform)
        rows.append({"name": name, **meta, "enabled": settings.get("enabled", True), "applies": applies})
    return page("admin/flows.html", store=store, flows=rows)


@bp.get("/flows/<flow>")
def flow_detail(flow: str) -> Any:
    """Show one flow's settings and, for email flows, its templates with a live preview."""
    ctx()
    flow = _flow_or_404(flow)
    store, redirect_to = _store_or_redirect()
    if redirect_to is not None:
        return redirect_to
    session = get_session()
    settings = flow_settings.effective(session, get_config(), store.id, flow)
    defaults = flow_settings.defaults(get_config(), flow)
    editor = None
    if flow in TEMPLATE_FLOWS:
        step = request.args.get("step") or "main"
        locale = locales.normalize(request.args.get("locale")) or locales.normalize(store.primary_locale) or "en"
        if step not in templates.FLOW_STEPS[flow]:
            abort(404)
        source = templates.get_source(session, store.id, flow, step, locale)
        edited = session.scalar(select(Template.id).where(
            Template.store_id == store.id, Template.flow == flow, Template.step == step, Template.locale == locale))
        try:
            rendered = templates.preview(flow, step, locale, source)
            preview_html, preview_subject, preview_error = rendered.html, rendered.subject, None
        except templates.TemplateRefused as exc:
            preview_html, preview_subject, preview_error = "", "", str(exc)
        editor = {"step": step, "locale": locale, "steps": templates.FLOW_STEPS[flow], "locales": locales.SUPPORTED,
                  "source": source, "edited": edited is not None, "preview_html": preview_html,
                  "preview_subject": preview_subject, "preview_error": preview_error}
    fields = [{"key": k, "label": LABELS.get(k, k.replace("_", " ").capitalize()), "default": v,
               "value": settings.get(k, v), "kind": _kind(v)} for k, v in defaults.items() if k != "enabled"]
    return page("admin/flow_detail.html", store=store, flow=flow, meta=FLOWS[flow], enabled=settings.get("enabled"),
                has_enabled="enabled" in defaults, fields=fields, editor=editor)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "list"
    return "text"


@bp.post("/flows/<flow>")
def save_flow(flow: str) -> Any:
    """Save a flow's settings for the store."""
    context = ctx()
    flow = _flow_or_404(flow)
    store, redirect_to = _store_or_redirect()
    if redirect_to is not None:
        return redirect_to
    try:
        changes = parse_settings(flow, request.form)
        flow_settings.update(get_session(), get_config(), store.id, flow, changes)
    except ConfigError as exc:
        return failed(str(exc))
    overview_cache().drop_merchant(context.merchant_id)
    return done("admin.flow_detail", f"{FLOWS[flow]['title']} saved.", flow=flow, store=store.id)


def _template_form() -> tuple[str, str, str, str, str | None]:
    step = request.form.get("step") or "main"
    locale = locales.normalize(request.form.get("locale")) or "en"
    return step, locale, request.form.get("subject") or "", request.form.get("html") or "", \
        (request.form.get("text") or None)


@bp.post("/flows/<flow>/preview")
def preview_template(flow: str) -> Any:
    """Render the template being typed with sample data (JSON for the live preview)."""
    ctx()
    if flow not in TEMPLATE_FLOWS:
        abort(404)
    step, locale, subject, body, text = _template_form()
    try:
        rendered = templates.validate_template(flow, step, subject, body, text, locale)
    except templates.TemplateRefused as exc:
        return json_response({"ok": False, "error": str(exc)}, 200)
    return json_response({"ok": True, "subject": rendered.subject, "html": rendered.html, "text": rendered.text})


@bp.post("/flows/<flow>/template")
def save_template(flow: str) -> Any:
    """Save (or reset to the shipped default) the store's template for a step and locale."""
    ctx()
    if flow not in TEMPLATE_FLOWS:
        abort(404)
    store, redirect_to = _store_or_redirect()
    if redirect_to is not None:
        return redirect_to
    session = get_session()
    step, locale, subject, body, text = _template_form()
    where = (Template.store_id == store.id, Template.flow == flow, Template.step == step, Template.locale == locale)
    if request.form.get("action") == "reset":
        session.execute(delete(Template).where(*where))
        return done("admin.flow_detail", "Template reset to the shipped default.", flow=flow, step=step,
                    locale=locale, store=store.id)
    try:
        templates.validate_template(flow, step, subject, body, text, locale)
    except templates.TemplateRefused as exc:
        return failed(f"The template was not saved: {exc}.")
    row = session.scalar(select(Template).where(*where))
    if row is None:
        row = Template(store_id=store.id, flow=flow, step=step, locale=locale, subject=subject, body_html=body)
        session.add(row)
    row.subject, row.body_html, row.body_text = subject, body, text
    return done("admin.flow_detail", "Template saved.", flow=flow, step=step, locale=locale, store=store.id)


def merchant_address(merchant: Merchant, user_email: str | None) -> str | None:
    """Return where merchant emails go: alert address, else sender address, else the signed-in user."""
    if merchant.alert_email or merchant.sender_email:
        return merchant.alert_email or merchant.sender_email
    if user_email:
        return user_email
    user = get_session().scalar(select(AdminUser.email).where(AdminUser.merchant_id == merchant.id)
                                .order_by(AdminUser.id).limit(1))
    return user


@bp.post("/flows/<flow>/test-send")
def test_send(flow: str) -> Any:
    """Queue a test email to the merchant through the outbox (flow "test"; the dispatcher sends it)."""
    context = ctx()
    flow = _flow_or_404(flow)
    store, redirect_to = _store_or_redirect()
    if redirect_to is not None:
        return redirect_to
    session = get_session()
    merchant = session.get(Merchant, context.merchant_id)
    address = merchant_address(merchant, context.user_email)
    if not address:
        return failed("Add an alert or sender email address in Settings first, so we know where to send the test.")
    now = get_clock().now()
    key = idempotency_key(store.id, "test", f"flow={flow}", f"at={now.isoformat()}")
    enqueue(session, store_id=store.id, flow="test", channel="email", idempotency_key=key, scheduled_for=now,
            to_address=address, locale=locales.normalize(request.form.get("locale")),
            payload={"about_flow": flow})
    return done("admin.flow_detail", f"Test email queued to {address}.", flow=flow, store=store.id)
