"""The metrics jobs: `customer_metrics` (daily), the per-store overview counts and flow lift sums (hourly), and the
first count of a store that has none (every few minutes).

The admin reads what they keep and never counts a store in a request: the overview adds the counts, the flow
lift report works its intervals out of the sums (``plugin.store_figures``).
"""

from __future__ import annotations

import logging

from plugin.analytics import SegmentRules, refresh_customer_metrics
from plugin.context import JobContext
from plugin.models import Merchant, Store
from plugin.store_figures import needs_count, save_store_figures, stored
from plugin.table_stats import refresh_statistics

log = logging.getLogger("aftercare.jobs.analytics")


def snapshot_metrics(ctx: JobContext, store_id: int) -> dict[str, int]:
    """Recompute one store's customer metrics with its merchant's segment rules, then its overview figures."""
    settings = dict(ctx.config.section("analytics"))
    now = ctx.clock.now()
    # A store that grew from nothing through webhooks never had a large sync: its tables get statistics here.
    with ctx.database.engine.begin() as conn:
        refresh_statistics(conn)
    with ctx.database.session() as session:
        store = session.get(Store, store_id)
        if store is None:
            return {"customers": 0}
        merchant = session.get(Merchant, store.merchant_id)
        overrides = (merchant.settings or {}).get("segments", {}) if merchant else {}
        rules = SegmentRules.from_settings({**settings, **overrides})
        count = refresh_customer_metrics(session, store_id, now, rules,
                                         lifetime_years=float(settings["expected_lifetime_years"]))
        # Same transaction: the overview never pairs new segments with old first-order counts.
        save_store_figures(session, store_id, now, settings)
    log.info("customer metrics refreshed", extra={"store_id": store_id, "customers": count})
    return {"customers": count}


def refresh_store_figures(ctx: JobContext, store_id: int) -> dict[str, int]:
    """Recount one store's overview figures hourly (the flow lift sums daily, or at once when there are none yet)."""
    settings = dict(ctx.config.section("analytics"))
    with ctx.database.session() as session:
        if session.get(Store, store_id) is None:
            return {"stores": 0}
        row = save_store_figures(session, store_id, ctx.clock.now(), settings, lift=False)
        eligible = row.figures["repurchase"][0]
    return {"stores": 1, "eligible_first_time_customers": eligible}


def count_uncounted_store(ctx: JobContext, store_id: int) -> dict[str, int]:
    """Count a store's overview figures when it has no current counts (just installed, or new windows), else nothing.

    Runs every few minutes, so the admin's "counting…" clears soon after install instead of at the hourly recount;
    for a counted store it reads one row.
    """
    settings = dict(ctx.config.section("analytics"))
    with ctx.database.session() as session:
        if session.get(Store, store_id) is None or not needs_count(stored(session, [store_id]).get(store_id), settings):
            return {"stores": 0}
        save_store_figures(session, store_id, ctx.clock.now(), settings)
    return {"stores": 1}
