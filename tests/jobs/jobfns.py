"""Job functions used as scheduler targets by the tests (real functions, resolved by dotted path)."""

from __future__ import annotations

from typing import Any

from plugin.context import JobContext
from plugin.models import FlowSettings, Store


def mark_store(ctx: JobContext, store_id: int) -> dict[str, Any]:
    """Write a row for the store, then fail for a store named "Broken" (its write must roll back)."""
    with ctx.database.session() as session:
        row = session.query(FlowSettings).filter_by(store_id=store_id, flow="probe").one_or_none()
        if row is None:
            session.add(FlowSettings(store_id=store_id, flow="probe", enabled=True, settings={"runs": 1}))
        else:
            row.settings = {"runs": row.settings["runs"] + 1}
        session.flush()
        if session.get(Store, store_id).name == "Broken":
            raise RuntimeError("boom in store")
    return {"marked": 1}


def global_probe(ctx: JobContext) -> dict[str, Any]:
    """A job that runs once across stores."""
    return {"ran_at": ctx.clock.now().isoformat()}
