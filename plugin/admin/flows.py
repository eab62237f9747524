"""Flows page: switch flows on and off, edit their settings, edit templates per locale with a live preview,
and send a test email to the merchant through the outbox."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import abort, request
from sqlalchemy import delete, select

from plugin import flow_settings, get_clock, get_config
from plugin.admin.blueprint import bp, ctx, done, failed, json_response, page
from plugin.admin.overview import overview_cache
from plugin.config import ConfigError
from plugin.db import get_session
from plugin.flows import FLOWS as DECLARED
from plugin.flows import sending_rules
from plugin.messaging import locales, templates
from plugin.messaging.branding import Brand, brand_of
from plugin.messaging.outbox import enqueue, idempotency_key
from plugin.models import AdminUser, Merchant, Template
from plugin.settings_schema import Setting, SettingsSchema


@dataclass(frozen=True)
class Section:
    """One settings section of the Flows page: a declared flow's, or the sending rules'."""

    name: str
    title: str
    about: str
    platform: str
    schema: SettingsSchema
    has_enabled: bool


def _sections() -> dict[str, Section]:
    sections = {}
    for flow in DECLARED.values():
        platform = flow.platforms[0] if len(flow.platforms) == 1 else "any"
        sections[flow.settings_section] = Section(flow.settings_section, flow.title, flow.about, platform,
                                                  flow.settings, has_enabled=flow.settings_section == flow.name)
    sections[sending_rules.SECTION] = Section(sending_rules.SECTION, sending_rules.TITLE, sending_rules.ABOUT, "any",
                                              sending_rules.SETTINGS, has_enabled=False)
    return sections


# Built once from the declarations (frozen data, not configuration).
SECTIONS: dict[str, Section] = _sections()
# Flows with email templates: those whose declared steps name one.
TEMPLATE_FLOWS = tuple(f.name for f in DECLARED.values() if any(step.template for step in f.steps))


def _store_or_redirect() -> Any:
    """Return the store a flow page edits, or a redirect to Settings when the merchant has none yet."""
    store = ctx().single_store()
    if store is None:
        return None, done("admin.settings", "Connect a store first; flows run per store.")
    return store, None


def _flow_or_404(flow: str) -> str:
    if flow not in SECTIONS:
        abort(404)
    return flow


def parse_settings(flow: str, form: Any) -> dict[str, Any]:
    """Turn a settings form into typed, checked values with the section's declared schema."""
    section = SECTIONS[flow]
    changes = section.schema.parse_form(form)
    if section.has_enabled:
        changes["enabled"] = form.get("enabled") in ("on", "true", "1")
    return changes


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
    for name, section in SECTIONS.items():
        settings = flow_settings.effective(session, config, store.id, name)
        applies = section.platform in ("any", store.platform)
        rows.append({"name": name, "title": section.title, "about": section.about, "platform": section.platform,
                     "enabled": bool(settings.get("enabled", True)), "applies": applies})
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
    section = SECTIONS[flow]
    settings = section.schema.load(flow_settings.effective(session, get_config(), store.id, flow))
    editor = None
    if flow in TEMPLATE_FLOWS:
        step = request.args.get("step") or templates.FLOW_STEPS[flow][0]
        locale = locales.normalize(request.args.get("locale")) or locales.normalize(store.primary_locale) or "en"
        if step not in templates.FLOW_STEPS[flow]:
            abort(404)
        source = templates.get_source(session, store.id, flow, step, locale)
        edited = session.scalar(select(Template.id).where(
            Template.store_id == store.id, Template.flow == flow, Template.step == step, Template.locale == locale))
        try:
            rendered = templates.preview(flow, step, locale, source,
                                         brand_of(store, session.get(Merchant, store.merchant_id)))
            preview_html, preview_subject, preview_error = rendered.html, rendered.subject, None
        except templates.TemplateRefused as exc:
            preview_html, preview_subject, preview_error = "", "", str(exc)
        editor = {"step": step, "locale": locale, "direction": locales.direction(locale),
                  "steps": templates.FLOW_STEPS[flow], "locales": locales.SUPPORTED,
                  "source": source, "edited": edited is not None, "preview_html": preview_html,
                  "preview_subject": preview_subject, "preview_error": preview_error}
    fields = [_field(setting, settings[setting.name]) for setting in section.schema]
    meta = {"title": section.title, "about": section.about, "platform": section.platform}
    return page("admin/flow_detail.html", store=store, flow=flow, meta=meta, enabled=settings["enabled"],
                has_enabled=section.has_enabled, fields=fields, editor=editor)


def _field(setting: Setting, value: Any) -> dict[str, Any]:
    """Describe one form field from its declared setting (the template draws it)."""
    kind = "number" if setting.type in ("int", "float") else setting.type
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 7, not 7.0, in the form
    return {"key": setting.name, "label": setting.label, "help": setting.help, "default": setting.default,
            "value": value, "kind": kind, "min": setting.min, "max": setting.max, "choices": setting.choices,
            "step": "1" if setting.type == "int" else "any"}


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
        flow_settings.update(get_session(), get_config(), store.id, flow, changes, SECTIONS[flow].schema)
    except ConfigError as exc:
        return failed(str(exc))
    overview_cache().drop_merchant(context.merchant_id)
    return done("admin.flow_detail", f"{SECTIONS[flow].title} saved.", flow=flow, store=store.id)


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
        rendered = templates.validate_template(flow, step, subject, body, text, locale, _brand())
    except templates.TemplateRefused as exc:
        return json_response({"ok": False, "error": str(exc)}, 200)
    return json_response({"ok": True, "subject": rendered.subject, "html": rendered.html, "text": rendered.text})


def _brand() -> Brand | None:
    """Return the brand of the store being edited, so the preview looks like the real email."""
    store = ctx().single_store()
    return brand_of(store, get_session().get(Merchant, store.merchant_id)) if store else None


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
