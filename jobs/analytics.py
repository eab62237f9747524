"""The metrics snapshot job: recompute `customer_metrics` for a store (read by the admin)."""

from __future__ import annotations

import logging

from jobs.context import JobContext
from plugin.analytics import SegmentRules, refresh_customer_metrics
from plugin.models import Merchant, Store

log = logging.getLogger("aftercare.jobs.analytics")


def snapshot_metrics(ctx: JobContext, store_id: int) -> dict[str, int]:
    """Recompute one store's customer metrics with its merchant's segment rules."""
    settings = dict(ctx.config.section("analytics"))
    with ctx.database.session() as session:
        store = session.get(Store, store_id)
        if store is None:
            return {"customers": 0}
        merchant = session.get(Merchant, store.merchant_id)
        overrides = (merchant.settings or {}).get("segments", {}) if merchant else {}
        rules = SegmentRules.from_settings({**settings, **overrides})
        count = refresh_customer_metrics(session, store_id, ctx.clock.now(), rules,
                                         lifetime_years=float(settings["expected_lifetime_years"]))
    log.info("customer metrics refreshed", extra={"store_id": store_id, "customers": count})
    return {"customers": count}
