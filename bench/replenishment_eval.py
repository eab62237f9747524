"""How well replenishment reminders are timed on a real purchase history, beside naive baselines.

Usage:
    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/replenishment_eval.py sqlite   [--path /tmp/aftercare-replenishment-eval.sqlite]
    .venv/bin/python bench/replenishment_eval.py postgres [--url postgresql+psycopg://postgres@127.0.0.1:5432/aftercare_eval]

Data: the CDNOW master file (Fader & Hardie's CDNOW sample: 23,570 customers who first bought in the first quarter
of 1997, every purchase to June 1998, 69,659 rows with the number of CDs and the amount), as the ``lifetimes``
package ships it (``lifetimes/datasets/CDNOW_master.txt``). It is the history the BG/NBD literature evaluates on,
real and public, and it installs from PyPI; only the data file is read (``lifetimes`` itself is not imported).
Each row becomes an order of one product, "CD", with the CDs as its quantity; rows of one customer on one day are
separate orders placed minutes apart (split orders: one purchase by plugin.purchases).

The cut is the classic one: calibration 1997-01-01 to 1997-09-30 (39 weeks), holdout 1997-10-01 to 1998-06-30
(39 weeks). The calibration orders go through the project's order sync (``upsert_orders``); at the cut the
learning job (medians, spreads, the MBG/NBD fit) runs once. Then every ``--step-days`` (default 7: the planner's
horizon is a week, so every reminder is still planned for its own time) at 23:00 UTC: the orders since the last
step are synced, the planned reminders whose time has come are marked sent (what the dispatcher does when the send
policy lets them through; every customer here consented), then the flow runs as it does hourly in production
(``cancel_reordered``, ``due_reminders``, written through the outbox). A reminder counts as sent when its time
came before the customer's next purchase (the hourly run would have cancelled it otherwise).

``--cut`` and ``--end`` move the cut and the holdout's end (``--cut 1997-04-30 --end 1997-09-30``: a split of the
calibration period alone, on which the default floor is chosen without looking at the holdout).

Figures, per customer and over the reminder based on their last calibration purchase:
- MAE: mean |first holdout purchase − predicted run-out at the cut| in days, over customers who bought again (the
  planner's run-out: the median next purchase given none by the cut and one within a year);
- well-timed: share of all customers who bought again in the holdout who were reminded (the reminder went out
  before they reordered) and reordered within ±14 days of the reminder's target (the centre of its window, the
  date its email names);
- wasted: share of the reminders sent to customers who did not buy in the holdout at all.
Baselines, computed here from the same purchases: the target is the last purchase + the global median gap, the
customer's median gap, or their mean gap (one-time buyers: the global median), reminded ``lead_days`` before it,
or at the cut when that has passed (the baselines get the catch-up and full coverage too); and the previous
planner: own median days per unit × quantity, else the product's median, never an overdue one.
"""

# ruff: noqa: S108

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from pg_database import open_database
from sqlalchemy import text

from connectors.records import CustomerRecord, OrderLineRecord, OrderRecord
from plugin.db import Database
from plugin.flows import replenishment, replenishment_plan
from plugin.flows.base import FlowRun
from plugin.messaging.outbox import schedule
from plugin.models import Base, Merchant, Store
from plugin.sync.orders import upsert_orders

CUT = datetime(1997, 9, 30, 23, 0, tzinfo=UTC)
END = datetime(1998, 6, 30, 23, 0, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TOLERANCE = 14.0
LEAD = 7.0


def cdnow_rows() -> list[tuple[str, date, int, Decimal]]:
    """Read CDNOW_master.txt from the installed ``lifetimes`` package (the data file only)."""
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the CDNOW history comes with the lifetimes package: pip install -e '.[bench]'")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "CDNOW_master.txt"
    rows = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) != 4 or not parts[0].isdigit():
            continue
        day = date(int(parts[1][:4]), int(parts[1][4:6]), int(parts[1][6:]))
        rows.append((parts[0], day, int(parts[2]), Decimal(parts[3])))
    return rows


def order_records(rows: list[tuple[str, date, int, Decimal]]) -> list[OrderRecord]:
    """Turn CDNOW rows into orders, each at 10:00 UTC on its day (the history has dates only).

    A customer's rows of one day are separate orders at the same time (split orders: one purchase); orders of
    consecutive days are exactly 24 h apart, two purchases as the dates say.
    """
    records = []
    for n, (customer, day, cds, amount) in enumerate(rows):
        created = datetime(day.year, day.month, day.day, 10, 0, tzinfo=UTC)
        records.append(OrderRecord(
            external_id=f"o{n}", created_at=created, updated_at=created, currency="USD", total_price=amount,
            customer=CustomerRecord(external_id=f"c{customer}", email=f"c{customer}@cdnow.test", locale="en",
                                    marketing_consent=True, marketing_consent_at=created),
            lines=(OrderLineRecord(external_id=f"l{n}", quantity=max(cds, 1), price=amount, title="CD",
                                   product_external_id="cd", variant_external_id="cd-1"),)))
    return records


def days(when: datetime) -> float:
    """Return days since 1970 (the planner's unit)."""
    return (when - EPOCH).total_seconds() / 86400.0


def purchases(records: list[OrderRecord], until: datetime) -> dict[str, list[tuple[float, int]]]:
    """Return each customer's purchases up to ``until`` as (day, CDs), orders within 24 h of the first one merged."""
    by_customer: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for r in sorted(records, key=lambda r: r.created_at):
        if r.created_at > until:
            continue
        bought = by_customer[r.customer.external_id]  # type: ignore[union-attr]
        t = days(r.created_at)
        if bought and t - bought[-1][0] < 1.0:
            bought[-1] = (bought[-1][0], bought[-1][1] + r.lines[0].quantity)
        else:
            bought.append((t, r.lines[0].quantity))
    return by_customer


def score(targets: dict[str, float], reminders: dict[str, float], reorder: dict[str, float]) -> dict[str, Any]:
    """Return MAE, well-timed and wasted shares of a set of targets and reminder days (days since 1970)."""
    end = days(END)
    errors = [abs(reorder[c] - targets[c]) for c in reorder if c in targets]
    sent = {c: d for c, d in reminders.items() if d <= end and (c not in reorder or reorder[c] >= d)}
    timed = [c for c in sent if c in reorder and abs(reorder[c] - targets[c]) <= TOLERANCE]
    wasted = [c for c in sent if c not in reorder]
    return {"mae": statistics.fmean(errors) if errors else float("nan"), "covered": len(errors),
            "well_timed": len(timed) / len(reorder), "wasted": len(wasted) / len(sent) if sent else 0.0,
            "sent": len(sent)}


def baselines(train: dict[str, list[tuple[float, int]]], lead: float = LEAD
              ) -> dict[str, tuple[dict[str, float], dict[str, float]]]:
    """Return {name: (targets, reminder days)} of the naive rules and of the previous planner (``lead`` days ahead)."""
    cut = days(CUT)
    gaps = {c: [b[0] - a[0] for a, b in zip(p, p[1:], strict=False)] for c, p in train.items()}
    per_unit = {c: [(b[0] - a[0]) / a[1] for a, b in zip(p, p[1:], strict=False)] for c, p in train.items()}
    global_median = statistics.median(g for gs in gaps.values() for g in gs)
    product_median = statistics.median(g for gs in per_unit.values() for g in gs)
    rules = {
        "global median gap": lambda c: global_median,
        "customer median gap": lambda c: statistics.median(gaps[c]) if gaps[c] else global_median,
        "customer mean gap": lambda c: statistics.fmean(gaps[c]) if gaps[c] else global_median,
    }
    result = {}
    for name, gap in rules.items():
        targets, reminders = {}, {}
        for c, p in train.items():
            target = max(p[-1][0] + gap(c), cut + lead)  # an overdue one is reminded at the cut (catch-up)
            targets[c], reminders[c] = target, target - lead
        result[name] = (targets, reminders)
    targets, reminders = {}, {}
    for c, p in train.items():
        cycle = statistics.median(per_unit[c]) if per_unit[c] else product_median
        targets[c] = p[-1][0] + cycle * p[-1][1]
        if targets[c] > cut:  # the previous planner never reminded a run-out that had passed
            reminders[c] = max(targets[c] - lead, cut)
    result["previous planner (median x qty, no catch-up)"] = (targets, reminders)
    return result


def load(db: Database, records: list[OrderRecord]) -> None:
    """Create the store and its consumable product, and sync the calibration orders through ``upsert_orders``."""
    with db.sessionmaker.begin() as s:
        merchant = Merchant(name="CDNOW", sender_email="shop@cdnow.test", alert_email="alerts@cdnow.test")
        s.add(merchant)
        s.flush()
        s.add(Store(id=1, merchant_id=merchant.id, platform="shopify", external_id="cdnow.myshopify.com",
                    name="CDNOW", currency="USD", timezone="UTC", primary_locale="en", protected_data_access=True))
    with db.sessionmaker.begin() as s:
        upsert_orders(s, 1, [r for r in records if r.created_at <= CUT])
        s.execute(text("UPDATE product SET consumable = :t WHERE store_id = 1"), {"t": True})


def simulate(db: Database, records: list[OrderRecord], settings: dict[str, Any], step_days: int
             ) -> dict[str, float]:
    """Learn at the cut, then run each holdout day; return the plan at the cut {customer external id: run-out}."""
    flow_settings = replenishment.FLOW.settings.load(settings)
    with db.sessionmaker.begin() as s:
        started = time.perf_counter()
        replenishment_plan.refresh_cycles(s, 1)
        replenishment_plan.learn_product_cycles(s, 1, CUT)
        print(f"  build + learn at the cut: {time.perf_counter() - started:.2f} s", flush=True)
        fit = replenishment_plan.store_fit(s, 1)
        if fit:
            print(f"  MBG/NBD (days): r={fit.r:.4f} alpha={fit.alpha:.2f} a={fit.a:.4f} b={fit.b:.4f} "
                  f"over {fit.pairs:,} customers", flush=True)
        dialect = s.get_bind().dialect.name
        plan = s.execute(text(f"""SELECT cu.external_id, pl.run_out FROM ({replenishment_plan.plan_sql(
            dialect, 'purchase_cycle')}) pl JOIN customer cu ON cu.id = pl.c"""),  # noqa: S608
            replenishment_plan.plan_params(1, flow_settings, CUT, fit)).all()
    holdout = sorted((r for r in records if r.created_at > CUT), key=lambda r: r.created_at)
    now, started, runs = CUT, time.perf_counter(), 0
    while now <= END:
        with db.sessionmaker.begin() as s:
            arrived = [r for r in holdout if now - timedelta(days=step_days) < r.created_at <= now]
            if arrived and now > CUT:
                upsert_orders(s, 1, arrived)
            s.execute(text("UPDATE message SET status = 'sent', sent_at = scheduled_for "
                           "WHERE status = 'scheduled' AND scheduled_for <= :now"),
                      {"now": now.replace(tzinfo=None) if db.dialect == "sqlite" else now})
            run = FlowRun(session=s, config=None, store=s.get(Store, 1), settings=flow_settings,  # type: ignore[arg-type]
                          now=now)
            replenishment_plan.cancel_reordered(s, 1, now)
            schedule(s, replenishment_plan.due_reminders(run), now)
        now, runs = now + timedelta(days=step_days), runs + 1
    print(f"  {runs} holdout runs, every {step_days} days (sync, dispatch, cancel, plan): "
          f"{time.perf_counter() - started:.1f} s", flush=True)
    return {c: float(t) for c, t in plan}


def sent_reminders(db: Database) -> dict[str, tuple[float, float, float]]:
    """Return {customer: (reminder day, target day, probability)} of reminders based on a calibration purchase."""
    with db.sessionmaker() as s:
        rows = s.execute(text("""
            SELECT cu.external_id, m.scheduled_for, m.payload, m.status FROM message m
            JOIN customer cu ON cu.id = m.customer_id JOIN orders o ON o.id = m.order_id
            WHERE m.flow = 'replenishment' AND o.created_at_remote <= :cut"""),
            {"cut": CUT.replace(tzinfo=None) if db.dialect == "sqlite" else CUT}).all()
    result = {}
    for customer, scheduled_for, payload, _status in rows:
        when = scheduled_for if isinstance(scheduled_for, datetime) else datetime.fromisoformat(str(scheduled_for))
        when = when.replace(tzinfo=UTC) if when.tzinfo is None else when
        body = payload if isinstance(payload, dict) else __import__("json").loads(payload)
        result[customer] = (days(when), days(datetime.fromisoformat(body["run_out_at"])), body["probability"])
    return result


def print_table(rows: list[tuple[str, dict[str, Any]]]) -> None:
    """Print the figures of each rule in one table."""
    print(f"\n  {'rule':<52} {'MAE days':>9} {'well-timed':>11} {'wasted':>7} {'sent':>6}")
    for name, f in rows:
        print(f"  {name:<52} {f['mae']:9.1f} {f['well_timed']:10.1%} {f['wasted']:7.1%} {f['sent']:6,}")


def main() -> None:
    global CUT, END  # every function here reads the cut and the holdout's end from the module (one run, one cut)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dialect", choices=["sqlite", "postgres"])
    parser.add_argument("--path", default="/tmp/aftercare-replenishment-eval.sqlite")
    parser.add_argument("--url", default="postgresql+psycopg://postgres@127.0.0.1:5432/aftercare_eval")
    parser.add_argument("--lead-days", type=float, default=LEAD)
    parser.add_argument("--step-days", type=int, default=7, help="days between runs of the flow in the holdout")
    parser.add_argument("--floors", default="0,0.05,0.1,0.15,0.2,0.25,0.3,0.4",
                        help="probability floors to report (the simulation runs with the lowest)")
    parser.add_argument("--cut", default=CUT.date().isoformat(), help="end of the calibration period (a date)")
    parser.add_argument("--end", default=END.date().isoformat(),
                        help="end of the holdout (a date); --cut 1997-06-30 --end 1997-09-30 splits the calibration "
                             "period alone, to choose the floor without looking at the holdout")
    args = parser.parse_args()
    CUT, END = (datetime.combine(date.fromisoformat(v), CUT.timetz()) for v in (args.cut, args.end))
    floors = sorted(float(v) for v in args.floors.split(","))
    url, db = open_database(args.dialect, args.path, args.url, reuse=False)
    Base.metadata.drop_all(db.engine)
    Base.metadata.create_all(db.engine)
    records = order_records(cdnow_rows())
    train = purchases(records, CUT)
    everything = purchases(records, END)
    cut = days(CUT)
    reorder = {c: next(t for t, _ in p if t > cut) for c, p in everything.items() if any(t > cut for t, _ in p)}
    print(f"{db.dialect}: cut {CUT:%Y-%m-%d}, holdout to {END:%Y-%m-%d}; CDNOW {len(records):,} orders, "
          f"{len(train):,} customers, "
          f"{sum(len(p) for p in train.values()):,} calibration purchases; {len(reorder):,} customers "
          f"({len(reorder) / len(train):.1%}) bought again in the holdout", flush=True)
    started = time.perf_counter()
    load(db, records)
    print(f"  calibration orders synced: {time.perf_counter() - started:.1f} s", flush=True)
    settings = {"lead_days": args.lead_days, "min_probability": floors[0]}
    plan = simulate(db, records, settings, args.step_days)
    reminders = sent_reminders(db)
    table = [(name, score(targets, rem, reorder)) for name, (targets, rem) in baselines(train, args.lead_days).items()]
    for floor in floors:
        chosen = {c: when for c, (when, _t, p) in reminders.items() if p >= floor}
        targets = {c: t for c, (_w, t, _p) in reminders.items()}
        figures = score({**plan, **targets}, chosen, reorder)
        figures["mae"] = score(plan, {}, reorder)["mae"]  # the model's run-out at the cut, for every returner
        table.append((f"model, probability floor {floor:.2f}", figures))
    print_table(table)
    named = dict(table)
    best = max(named[n]["well_timed"] for n in ("global median gap", "customer median gap", "customer mean gap"))
    median_mae = named["customer median gap"]["mae"]
    print(f"\n  targets: MAE <= {0.85 * median_mae:.1f} (15 % below the customer median's {median_mae:.1f}), "
          f"well-timed >= {1.2 * best:.1%} (1.2 x the best baseline's {best:.1%}), wasted <= 35 %")
    for floor in floors:
        f = named[f"model, probability floor {floor:.2f}"]
        ok = f["mae"] <= 0.85 * median_mae and f["well_timed"] >= 1.2 * best and f["wasted"] <= 0.35
        print(f"  floor {floor:.2f}: {'meets all three' if ok else 'misses'}")
    db.dispose()


if __name__ == "__main__":
    main()
