"""Overview page: repurchase rate and mode, cohorts, segments (with their rules), CLV:CAC, flow performance.

The repurchase rate, cohorts, orders per month and flow outcomes are the counts the metrics jobs keep per
store (`plugin.store_figures`, hourly), so the page never scans a store's orders; a store not counted yet is
shown as "counting…" until the ``overview_first_counts`` job has counted it. Segments and CLV come from
`customer_metrics`. The figures of one store set are also kept per process (``OverviewCache``) until the
data changes (new counts, a metrics snapshot or a sync) or for five minutes; saving rules or CAC drops it.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from threading import Lock
from typing import Any

from flask import current_app, request
from sqlalchemy import func, select

from plugin import analytics, get_clock, get_config, store_figures
from plugin.admin import charts
from plugin.admin.blueprint import bp, ctx, done, failed, page
from plugin.db import get_session
from plugin.models import CustomerMetrics, Merchant, SyncState

CACHE_TTL = timedelta(minutes=5)
CacheKey = tuple[int, tuple[int, ...], tuple[Any, ...]]
SEGMENT_ORDER = ("vip", "active", "growth", "dormant")
SEGMENT_NAMES = {"vip": "VIP", "active": "Active", "growth": "Growth", "dormant": "Dormant", "unknown": "Not scored"}
CANCEL_REASON_NAMES = {"CUSTOMER": "Customer", "DECLINED": "Payment declined", "FRAUD": "Fraud",
                       "INVENTORY": "Out of stock", "STAFF": "Staff error", "OTHER": "Other", "": "Reason not given"}
ANSWER_NAMES = {"found_cheaper": "Found it cheaper", "ordered_by_mistake": "Ordered by mistake",
                "delivery_too_slow": "Delivery too slow", "changed_mind": "Changed my mind", "other": "Other"}
RULE_FIELDS = {
    "vip_min_spent_12m": ("VIP: spent more than (12 months)", float),
    "vip_min_orders_12m": ("VIP: at least this many orders (12 months)", int),
    "growth_min_order": ("Growth: one order of at least", float),
    "growth_max_orders": ("Growth: at most this many orders", int),
    "dormant_after_days": ("Dormant: no order for (days)", int),
}


@dataclass
class OverviewCache:
    """Computed overview figures per (merchant, store set), valid for ``CACHE_TTL`` of the app's clock."""

    entries: dict[CacheKey, tuple[datetime, dict[str, Any]]] = field(default_factory=dict)
    lock: Lock = field(default_factory=Lock)

    def get(self, key: CacheKey, now: datetime) -> dict[str, Any] | None:
        """Return fresh figures for the key, if any."""
        with self.lock:
            hit = self.entries.get(key)
        return hit[1] if hit and now - hit[0] < CACHE_TTL else None

    def put(self, key: CacheKey, now: datetime, value: dict[str, Any]) -> None:
        """Keep figures for the key (bounded: the oldest entries go first)."""
        with self.lock:
            if len(self.entries) > 256:
                for old in sorted(self.entries, key=lambda k: self.entries[k][0])[:128]:
                    del self.entries[old]
            self.entries[key] = (now, value)

    def drop_merchant(self, merchant_id: int) -> None:
        """Forget every entry of a merchant (after its settings changed)."""
        with self.lock:
            for key in [k for k in self.entries if k[0] == merchant_id]:
                del self.entries[key]


def overview_cache() -> OverviewCache:
    """Return the app's overview cache."""
    return current_app.extensions["aftercare.admin_overview_cache"]


def data_version(store_ids: list[int]) -> tuple[Any, ...]:
    """Return what changes when the figures do: each store's counts, metrics snapshot time and last sync.

    A snapshot writes one ``computed_at`` for all of a store's rows, so one indexed row per store tells it.
    """
    session = get_session()
    stamps: list[Any] = sorted((row.store_id, row.computed_at)
                               for row in store_figures.stored(session, store_ids).values())
    for store_id in store_ids:
        stamps.append(session.scalar(select(CustomerMetrics.computed_at).where(CustomerMetrics.store_id == store_id)
                                     .limit(1)))
    stamps.append(session.scalar(select(func.max(SyncState.last_success_at)).where(SyncState.store_id.in_(store_ids))))
    return tuple(stamps)


def segment_rules(merchant: Merchant | None) -> analytics.SegmentRules:
    """Return the merchant's segment rules: [analytics] defaults overlaid by merchant.settings["segments"]."""
    base = dict(get_config().section("analytics"))
    overrides = ((merchant.settings or {}).get("segments") or {}) if merchant else {}
    return analytics.SegmentRules.from_settings({**base, **overrides})


def compute_figures(store_ids: list[int], merchant: Merchant | None, now: datetime) -> dict[str, Any]:
    """Return every overview figure for a set of stores (stored counts merged, segments and CLV live)."""
    session = get_session()
    settings = get_config().section("analytics")
    figures = store_figures.overview_figures(session, store_ids, now, settings)
    figures["segments"] = analytics.segment_counts(session, store_ids)
    figures["clv"] = analytics.clv_summary(session, store_ids, merchant.cac if merchant else None)
    return figures


def _month_label(month: str) -> str:
    """Turn ``2026-03`` into ``Mar 26``."""
    return f"{calendar.month_abbr[int(month[5:7])]} {month[2:4]}"


@bp.get("/")
def overview() -> Any:
    """Show the overview of the selected store (or all stores)."""
    context = ctx()
    session = get_session()
    now = get_clock().now()
    merchant = session.get(Merchant, context.merchant_id)
    key = (context.merchant_id, tuple(context.scope_ids), data_version(context.scope_ids))
    cache = overview_cache()
    figures = cache.get(key, now)
    if figures is None:
        figures = compute_figures(context.scope_ids, merchant, now)
        cache.put(key, now, figures)
    segments = figures["segments"]
    seg_items = [(SEGMENT_NAMES[s], float(segments.get(s, 0))) for s in SEGMENT_ORDER]
    if segments.get("unknown"):
        seg_items.append((SEGMENT_NAMES["unknown"], float(segments["unknown"])))
    monthly = figures["monthly"]
    rules = segment_rules(merchant)
    currencies = sorted({s.currency for s in context.stores if s.id in context.scope_ids})
    counting = [s.name or s.external_id for s in context.stores if s.id in figures["counting"]]
    return page(
        "admin/overview.html", figures=figures, stats=figures["stats"], clv=figures["clv"],
        segment_chart=charts.bar_chart(seg_items, "Customers per segment"),
        segment_total=sum(segments.values()),
        orders_chart=charts.area_chart([(_month_label(m), float(n)) for m, n, _ in monthly],
                                       "Orders per month, last 12 months",
                                       secondary=[float(f) for _, _, f in monthly],
                                       secondary_label="First orders (new customers)"),
        flow_chart=charts.bar_chart([(f.flow.replace("_", " "), float(f.sent)) for f in figures["flows"]],
                                    "Messages sent per flow, last 90 days")
        if any(f.sent for f in figures["flows"]) else None,
        answers_chart=charts.bar_chart([(ANSWER_NAMES[r], float(figures["service"]["answers"].get(r, 0)))
                                        for r in ANSWER_NAMES], "Why customers cancelled, last 90 days")
        if figures["service"]["answers"] else None,
        cancellations=sorted(((p.capitalize(), CANCEL_REASON_NAMES.get(r, r), n) for key, n in
                              figures["service"]["cancellations"].items() for p, r in [key.split(":", 1)]),
                             key=lambda row: (row[0], -row[2])),
        heat_class=charts.heat_class, rules=rules, rule_fields=RULE_FIELDS, merchant=merchant,
        currency=currencies[0] if len(currencies) == 1 else None, currencies=currencies,
        segment_names=SEGMENT_NAMES, segments=segments, segment_order=SEGMENT_ORDER, counting=counting,
        all_counting=bool(counting) and len(figures["counting"]) == len(context.scope_ids))


@bp.post("/segments")
def save_segment_rules() -> Any:
    """Save the merchant's segment rules and recompute the segments of its stores."""
    context = ctx()
    session = get_session()
    merchant = session.get(Merchant, context.merchant_id)
    rules: dict[str, Any] = {}
    for name, (label, kind) in RULE_FIELDS.items():
        raw = (request.form.get(name) or "").strip()
        try:
            value = kind(raw)
        except ValueError:
            return failed(f"{label} must be a number.")
        if value < 0 or (kind is int and name == "dormant_after_days" and value < 1):
            return failed(f"{label} must be a positive number.")
        rules[name] = value
    merchant.settings = {**(merchant.settings or {}), "segments": rules}
    settings = get_config().section("analytics")
    now = get_clock().now()
    for store_id in context.store_ids:
        analytics.refresh_customer_metrics(session, store_id, now, segment_rules(merchant),
                                           lifetime_years=float(settings["expected_lifetime_years"]))
    overview_cache().drop_merchant(context.merchant_id)
    return done("admin.overview", "Segment rules saved and segments recomputed.")


@bp.post("/cac")
def save_cac() -> Any:
    """Save the customer acquisition cost the merchant pays (for CLV:CAC)."""
    context = ctx()
    merchant = get_session().get(Merchant, context.merchant_id)
    raw = (request.form.get("cac") or "").strip().replace(",", ".")
    if raw == "":
        merchant.cac = None
    else:
        try:
            value = Decimal(raw)
        except InvalidOperation:
            return failed("The acquisition cost must be an amount, e.g. 25.00.")
        if value < 0 or value > Decimal("1000000"):
            return failed("The acquisition cost must be between 0 and 1,000,000.")
        merchant.cac = value.quantize(Decimal("0.01"))
    currency = (request.form.get("cac_currency") or "").strip().upper()[:3]
    merchant.cac_currency = currency or merchant.cac_currency
    overview_cache().drop_merchant(context.merchant_id)
    return done("admin.overview", "Acquisition cost saved.")
