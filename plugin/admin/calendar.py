"""Shopping calendar page: each country's events of a year (the shipped defaults with the store's edits), and
forms to change an event (countries, segments, discount, its date this year, on/off), reset it, or add one's own."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import abort, request

from plugin import flow_settings, get_clock, get_config
from plugin import shopping_calendar as cal
from plugin.admin.blueprint import bp, ctx, done, failed, page
from plugin.db import get_session
from plugin.flows import shopping_calendar as flow

SEGMENT_NAMES = {"growth": "Growth", "vip": "VIP", "active": "Active", "dormant": "Dormant"}


def _store() -> Any:
    store = ctx().single_store()
    if store is None:
        return None, done("admin.settings", "Connect a store first; the calendar is per store.")
    return store, None


def _year() -> int:
    try:
        year = int(request.args.get("year") or get_clock().now().year)
    except ValueError:
        abort(400)
    if not 2000 <= year <= 2100:
        abort(400)
    return year


@bp.get("/calendar")
def calendar() -> Any:
    """List the store's shopping events of a year, per country and as one editable list."""
    ctx()
    store, redirect_to = _store()
    if redirect_to is not None:
        return redirect_to
    session = get_session()
    year = _year()
    events = cal.occurrences(session, store.id, [year])
    per_country: dict[str, list[cal.Occurrence]] = {}
    for event in events:
        for country in event.countries:
            per_country.setdefault(country, []).append(event)
    settings = flow.FLOW.settings.load(flow_settings.effective(session, get_config(), store.id, flow.NAME))
    notes = {key: d.note for key, d in cal.DEFAULTS.items()}
    return page("admin/calendar.html", store=store, year=year, events=events,
                per_country=dict(sorted(per_country.items())), segments=SEGMENT_NAMES, notes=notes,
                flow_enabled=bool(settings["enabled"]), flow_discount=settings["discount_percent"],
                lead_days=settings["lead_days"])


def _form_date(name: str) -> date | None:
    text = (request.form.get(name) or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise cal.CalendarError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _form_discount() -> int | None:
    text = (request.form.get("discount_percent") or "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise cal.CalendarError("the discount is a whole percentage, e.g. 15") from None


def _edit(key: str) -> dict[str, Any]:
    """Read an event form into save_event's arguments; values equal to a default's are stored as 'default'."""
    countries = cal.parse_countries(request.form.get("countries") or "")
    segments = cal.parse_segments(request.form.getlist("segments"))
    on_date = _form_date("on_date")
    default = cal.DEFAULTS.get(key)
    title = (request.form.get("title") or "").strip() or None
    if default is not None:
        if on_date is not None and on_date == default.rule(on_date.year):
            on_date = None
        if countries == list(default.countries):
            countries = None
        if segments == list(cal.DEFAULT_SEGMENTS):
            segments = None
        if title == default.title:
            title = None
    return {"title": title, "countries": countries, "segments": segments, "discount_percent": _form_discount(),
            "on_date": on_date, "yearly": request.form.get("yearly") in ("on", "true", "1"),
            "enabled": request.form.get("enabled") in ("on", "true", "1")}


@bp.post("/calendar/<key>")
def save_calendar_event(key: str) -> Any:
    """Change one event of the store's calendar, or reset it to the shipped default (a custom one is removed)."""
    ctx()
    store, redirect_to = _store()
    if redirect_to is not None:
        return redirect_to
    session = get_session()
    year = request.form.get("year") or None
    if request.form.get("action") == "reset":
        cal.reset_event(session, store.id, key)
        return done("admin.calendar", "Event reset." if key in cal.DEFAULTS else "Event removed.", store=store.id,
                    year=year)
    if key not in cal.DEFAULTS and cal.store_edit(session, store.id, key) is None:
        abort(404)
    try:
        cal.save_event(session, store.id, key, **_edit(key))
    except cal.CalendarError as exc:
        return failed(str(exc))
    return done("admin.calendar", "Event saved.", store=store.id, year=year)


@bp.post("/calendar")
def add_calendar_event() -> Any:
    """Add the merchant's own event to the store's calendar."""
    ctx()
    store, redirect_to = _store()
    if redirect_to is not None:
        return redirect_to
    session = get_session()
    title = (request.form.get("title") or "").strip()
    key = cal.custom_key(title)
    if not title:
        return failed("your own event needs a name")
    if cal.store_edit(session, store.id, key) is not None:
        return failed("an event of that name exists already; edit it instead")
    try:
        edit = _edit(key)
        edit["segments"] = edit["segments"] or list(cal.DEFAULT_SEGMENTS)
        cal.save_event(session, store.id, key, **{**edit, "enabled": True})
    except cal.CalendarError as exc:
        return failed(str(exc))
    return done("admin.calendar", f"{title} added.", store=store.id, year=request.form.get("year") or None)
