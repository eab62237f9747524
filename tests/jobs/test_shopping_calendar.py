"""Shopping-calendar emails: lead_days (3) before an event at 09:00 in the customer's own zone, to customers of
the event's countries and segments (growth by default: an order of $200 or more and at most 2 orders), once per
customer per event per year, with the store's edits (segments, discount, moved or disabled events) and holdout.

Expected moments are computed here with zoneinfo directly; the flow is run hour by hour and each row must appear
in the first run at or after its moment, never before, and only once. Segments come from the real analytics job
over real orders."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select

from plugin import flow_lift, flow_settings
from plugin import shopping_calendar as cal
from plugin.analytics import SegmentRules, refresh_customer_metrics
from plugin.flows import runner
from plugin.models import CustomerMetrics, Message
from tests.jobs import factory as f

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
FLOW = "shopping_calendar"


def _at_nine(day: date, zone: str) -> datetime:
    return datetime(day.year, day.month, day.day, 9, 0, tzinfo=ZoneInfo(zone)).astimezone(UTC)


AHEAD = timedelta(hours=48)


def _first_run(start: datetime, moment: datetime) -> datetime:
    """The hourly run that first writes a row: 48 hours before its moment (moments fall on the hour), or the
    walk's first run when that is later."""
    return max(start, moment - AHEAD)


def _walk(ctx, sid, start: datetime, hours: int) -> dict[tuple[int, str], tuple[datetime, datetime, str]]:
    """Run the flow every hour; return {(customer, event): (first run that wrote it, scheduled_for, key)}."""
    seen: dict[tuple[int, str], tuple[datetime, datetime, str]] = {}
    for h in range(hours):
        now = start + h * HOUR
        ctx.clock.set(now)
        runner.run(ctx, sid, FLOW)
        with ctx.database.session() as s:
            for m in s.scalars(select(Message).where(Message.flow == FLOW)):
                seen.setdefault((m.customer_id, m.payload["event_key"]), (now, m.scheduled_for, m.idempotency_key))
    return seen


def _shopper(s, sid, kind: str, at: datetime, **kw):
    """A customer whose orders put them in ``kind``: growth (one $250 order), active (3 x $50), vip (5 x $150)."""
    c = f.customer(s, sid, **kw)
    plan = {"growth": [250], "active": [50, 50, 50], "vip": [150] * 5, "two_big": [220, 40]}[kind]
    for i, amount in enumerate(plan):
        f.order(s, sid, c.id, at - (10 + 7 * i) * DAY, total_price=Decimal(amount))
    return c


def _score(ctx, sid, now):
    with ctx.database.session() as s:
        refresh_customer_metrics(s, sid, now, SegmentRules())
        return {m.customer_id: m.segment for m in s.scalars(select(CustomerMetrics))}


def test_christmas_reaches_tokyo_before_los_angeles_and_only_its_countries_and_segment(ctx):
    scored_at = datetime(2026, 12, 1, tzinfo=UTC)
    with ctx.database.session() as s:
        st = f.store(s, timezone="America/New_York", country="US")
        sid = st.id
        tokyo = _shopper(s, sid, "growth", scored_at, country="JP", time_zone="Asia/Tokyo", locale="ja")
        la = _shopper(s, sid, "growth", scored_at, country="US", time_zone="America/Los_Angeles")
        two_big = _shopper(s, sid, "two_big", scored_at, country="DE", time_zone="Europe/Berlin", locale="de")
        london_by_zone = _shopper(s, sid, "growth", scored_at, time_zone="Europe/London")  # no country: its zone's
        store_country = _shopper(s, sid, "growth", scored_at)  # neither: the store's country and zone
        shanghai = _shopper(s, sid, "growth", scored_at, country="CN", time_zone="Asia/Shanghai")  # no Christmas
        active = _shopper(s, sid, "active", scored_at, country="US", time_zone="America/Chicago")
        vip = _shopper(s, sid, "vip", scored_at, country="US", time_zone="America/Chicago")
        no_email = _shopper(s, sid, "growth", scored_at, country="US", time_zone="America/Chicago", email=None)
        f.customer(s, sid, country="US", time_zone="America/Chicago")  # no orders: not scored, no segment
        gone = _shopper(s, sid, "growth", scored_at, country="US", time_zone="America/Chicago")
    segments = _score(ctx, sid, scored_at)
    assert segments[tokyo.id] == segments[two_big.id] == segments[shanghai.id] == "growth"
    assert (segments[active.id], segments[vip.id]) == ("active", "vip")
    with ctx.database.session() as s:
        s.get(type(gone), gone.id).redacted_at = scored_at
    # Christmas is 25 December: emails on the 22nd at 09:00 local, from Tokyo (00:00 UTC) to Los Angeles (17:00 UTC).
    seen = _walk(ctx, sid, datetime(2026, 12, 20, 0, 0, tzinfo=UTC), 5 * 24)
    christmas = {cid: v for (cid, key), v in seen.items() if key == "christmas"}
    expected = {tokyo.id: _at_nine(date(2026, 12, 22), "Asia/Tokyo"),
                la.id: _at_nine(date(2026, 12, 22), "America/Los_Angeles"),
                two_big.id: _at_nine(date(2026, 12, 22), "Europe/Berlin"),
                london_by_zone.id: _at_nine(date(2026, 12, 22), "Europe/London"),
                store_country.id: _at_nine(date(2026, 12, 22), "America/New_York"),
                no_email.id: _at_nine(date(2026, 12, 22), "America/Chicago")}
    assert {cid: sched for cid, (_first, sched, _key) in christmas.items()} == expected
    assert expected[tokyo.id] == datetime(2026, 12, 22, 0, 0, tzinfo=UTC)
    assert expected[la.id] == datetime(2026, 12, 22, 17, 0, tzinfo=UTC)
    for cid, (first, sched, key) in christmas.items():
        assert first == _first_run(datetime(2026, 12, 20, 0, 0, tzinfo=UTC), sched), (cid, first, sched)
        assert key == f"{sid}:{FLOW}:event=christmas:year=2026:customer={cid}:step=main"
    # Boxing Day (26 December) goes to the British customer only, on the 23rd.
    boxing = {cid: sched for (cid, key), (_f, sched, _k) in seen.items() if key == "boxing_day"}
    assert boxing == {london_by_zone.id: _at_nine(date(2026, 12, 23), "Europe/London")}
    assert {key for (_cid, key) in seen} == {"christmas", "boxing_day"}
    with ctx.database.session() as s:
        rows = {m.customer_id: m for m in s.scalars(select(Message).where(Message.flow == FLOW,
                                                                            Message.step == "main"))}
        assert (rows[no_email.id].status, rows[no_email.id].skip_reason) == ("skipped", "no_contact_access")
        sent = rows[tokyo.id]
        assert sent.marketing and sent.status == "scheduled"
        assert {k: sent.payload[k] for k in ("event_key", "event_on", "country", "discount_percent",
                                            "discount_valid_days", "code_prefix")} == {
            "event_key": "christmas", "event_on": "2026-12-25", "country": "JP", "discount_percent": 15,
            "discount_valid_days": 7, "code_prefix": "CHRISTMAS"}
    # Walking the same days again writes nothing more: once per customer per event per year.
    _walk(ctx, sid, datetime(2026, 12, 21, 0, 0, tzinfo=UTC), 72)
    with ctx.database.session() as s:
        assert len(s.scalars(select(Message).where(Message.flow == FLOW)).all()) == len(seen)


def test_lunar_new_year_valentines_and_golden_week_follow_their_moving_dates_and_countries(ctx):
    scored_at = datetime(2026, 1, 20, tzinfo=UTC)
    with ctx.database.session() as s:
        st = f.store(s, timezone="UTC", country="GB")
        sid = st.id
        beijing = _shopper(s, sid, "growth", scored_at, country="CN", time_zone="Asia/Shanghai", locale="zh-Hans")
        taipei = _shopper(s, sid, "growth", scored_at, country="TW", time_zone="Asia/Taipei", locale="zh-Hant")
        osaka = _shopper(s, sid, "growth", scored_at, country="JP", time_zone="Asia/Tokyo", locale="ja")
    _score(ctx, sid, scored_at)
    # Spring Festival 2026 is 17 February: emails on the 14th at 09:00 local (01:00 UTC in both zones). Japan's
    # Valentine's Day (14 February) is due on the 11th at 09:00 JST (00:00 UTC) and, at most 36 hours late, is
    # still written by the walk's first run.
    seen = _walk(ctx, sid, datetime(2026, 2, 11, 12, 0, tzinfo=UTC), 96)
    assert {(cid, key): sched for (cid, key), (_f, sched, _k) in seen.items()} == {
        (beijing.id, "lunar_new_year"): datetime(2026, 2, 14, 1, 0, tzinfo=UTC),
        (taipei.id, "lunar_new_year"): datetime(2026, 2, 14, 1, 0, tzinfo=UTC),
        (osaka.id, "valentines_day"): datetime(2026, 2, 11, 0, 0, tzinfo=UTC)}
    assert seen[(osaka.id, "valentines_day")][0] == datetime(2026, 2, 11, 12, 0, tzinfo=UTC)
    # Golden Week from 29 April: the Japanese customer on the 26th at 09:00 JST (00:00 UTC).
    with ctx.database.session() as s:
        s.execute(Message.__table__.delete())
    _score(ctx, sid, datetime(2026, 4, 20, tzinfo=UTC))
    seen = _walk(ctx, sid, datetime(2026, 4, 25, 0, 0, tzinfo=UTC), 48)
    assert {(cid, key): sched for (cid, key), (_f, sched, _k) in seen.items()} == {
        (osaka.id, "golden_week"): datetime(2026, 4, 26, 0, 0, tzinfo=UTC)}


def test_merchant_edits_segments_discount_move_disable_and_own_event(ctx):
    scored_at = datetime(2027, 7, 1, tzinfo=UTC)
    with ctx.database.session() as s:
        st = f.store(s, timezone="America/New_York", country="US")
        sid = st.id
        growth = _shopper(s, sid, "growth", scored_at, country="US", time_zone="America/New_York")
        vip = _shopper(s, sid, "vip", scored_at, country="US", time_zone="America/New_York")
        active = _shopper(s, sid, "active", scored_at, country="US", time_zone="America/New_York")
        # Amazon announced Prime Day 2027 for 8 July (the default would be the 13th); VIPs get it too, at 25 %.
        cal.save_event(s, sid, "prime_day", on_date=date(2027, 7, 8), segments=["growth", "vip"],
                       discount_percent=25)
        cal.save_event(s, sid, "custom_summer_party", title="Summer party", on_date=date(2027, 7, 10),
                       countries=["US"], segments=["active"], discount_percent=0)
    _score(ctx, sid, scored_at)
    seen = _walk(ctx, sid, datetime(2027, 7, 4, 0, 0, tzinfo=UTC), 5 * 24)
    assert {(cid, key): sched for (cid, key), (_f, sched, _k) in seen.items()} == {
        (growth.id, "prime_day"): _at_nine(date(2027, 7, 5), "America/New_York"),
        (vip.id, "prime_day"): _at_nine(date(2027, 7, 5), "America/New_York"),
        (active.id, "custom_summer_party"): _at_nine(date(2027, 7, 7), "America/New_York")}
    with ctx.database.session() as s:
        rows = {(m.customer_id, m.payload["event_key"]): m.payload for m in s.scalars(select(Message))}
        assert rows[(vip.id, "prime_day")]["discount_percent"] == 25
        own = rows[(active.id, "custom_summer_party")]
        assert "discount_percent" not in own and own["event_title"] == "Summer party"
        # Moving the event again after the emails went out sends nothing twice this year.
        cal.save_event(s, sid, "prime_day", on_date=date(2027, 7, 15), segments=["growth", "vip"])
    _walk(ctx, sid, datetime(2027, 7, 11, 0, 0, tzinfo=UTC), 3 * 24)
    with ctx.database.session() as s:
        assert len(s.scalars(select(Message)).all()) == 3
        # Disabled, the default Prime Day 2028 (11 July) writes nothing; reset to the default, it does, with 2028's
        # key. A year on, only the growth customer who ordered again is still in the segment (the others lapsed).
        cal.save_event(s, sid, "prime_day", enabled=False)
        f.order(s, sid, growth.id, datetime(2028, 6, 20, tzinfo=UTC), total_price=Decimal(30))
    assert _score(ctx, sid, datetime(2028, 7, 1, tzinfo=UTC))[growth.id] == "growth"

    def rows_2028():
        with ctx.database.session() as s:
            return {(m.customer_id, m.scheduled_for, m.idempotency_key) for m in s.scalars(select(Message))
                    if ":year=2028:" in m.idempotency_key}

    _walk(ctx, sid, datetime(2028, 7, 7, 0, 0, tzinfo=UTC), 3 * 24)
    assert rows_2028() == set()
    with ctx.database.session() as s:
        cal.reset_event(s, sid, "prime_day")
    _walk(ctx, sid, datetime(2028, 7, 7, 0, 0, tzinfo=UTC), 3 * 24)
    assert rows_2028() == {(growth.id, _at_nine(date(2028, 7, 8), "America/New_York"),
                            f"{sid}:{FLOW}:event=prime_day:year=2028:customer={growth.id}:step=main")}


def test_holdout_is_a_stable_share_and_the_flow_can_be_off(ctx):
    scored_at = datetime(2026, 11, 1, tzinfo=UTC)
    with ctx.database.session() as s:
        st = f.store(s, timezone="America/New_York", country="US")
        sid = st.id
        people = [_shopper(s, sid, "growth", scored_at, country="US", time_zone="America/New_York").id
                  for _ in range(40)]
        flow_settings.update(s, ctx.config, sid, FLOW, {"holdout_percent": 30})
    _score(ctx, sid, scored_at)
    # Black Friday 2026 is 27 November: emails on the 24th at 09:00 New York (14:00 UTC); Cyber Monday's on the 27th.
    _walk(ctx, sid, datetime(2026, 11, 24, 13, 0, tzinfo=UTC), 3)

    def held(cid: int) -> bool:
        digest = hashlib.sha256(f"{sid}:{cid}:{FLOW}".encode()).digest()
        return int.from_bytes(digest[:8], "big") % 10_000 < 3_000

    with ctx.database.session() as s:
        rows = {m.customer_id: (m.status, m.skip_reason, m.scheduled_for)
                for m in s.scalars(select(Message).where(Message.flow == FLOW))}
    at = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
    assert rows == {cid: ("skipped", "holdout", at) if held(cid) else ("scheduled", None, at) for cid in people}
    assert 0 < sum(held(c) for c in people) < len(people)
    # The report: the emails went out at 14:00; every third customer orders $80 two days later. Exposed and held-out
    # groups hold exactly the customers above, with their orders in the 7-day window.
    buyers = set(people[::3])
    with ctx.database.session() as s:
        for m in s.scalars(select(Message).where(Message.flow == FLOW, Message.status == "scheduled")):
            m.status, m.sent_at = "sent", at
        for cid in buyers:
            f.order(s, sid, cid, at + 2 * DAY, total_price=Decimal(80))
        table = flow_lift.moments_by_flow(s, [sid], at - DAY, at + DAY, attribution_days=7)
    exposed = [c for c in people if not held(c)]
    kept = [c for c in people if held(c)]

    def moments(group):
        n_orders = [1.0 if c in buyers else 0.0 for c in group]
        revenue = [80.0 * x for x in n_orders]
        return ((len(group), sum(n_orders), sum(x * x for x in n_orders)),
                (len(group), sum(revenue), sum(x * x for x in revenue)))

    got = table[FLOW]
    assert tuple((m.n, m.total, m.total_sq) for m in got["exposed"]) == moments(exposed)
    assert tuple((m.n, m.total, m.total_sq) for m in got["held_out"]) == moments(kept)
    with ctx.database.session() as s:
        flow_settings.update(s, ctx.config, sid, FLOW, {"enabled": False})
    ctx.clock.set(datetime(2026, 11, 27, 14, 0, tzinfo=UTC))
    assert runner.run(ctx, sid, FLOW) == {"disabled": 1}


def test_an_edit_withdraws_what_is_planned_and_not_sent(ctx):
    scored_at = datetime(2027, 7, 1, tzinfo=UTC)
    with ctx.database.session() as s:
        st = f.store(s, timezone="America/New_York", country="US")
        sid = st.id
        sent = _shopper(s, sid, "growth", scored_at, country="US", time_zone="America/New_York")
        waiting = _shopper(s, sid, "growth", scored_at, country="US", time_zone="America/Los_Angeles")
    _score(ctx, sid, scored_at)
    # Prime Day 2027 (13 July): both planned by the run of 9 July 16:00 UTC (both moments within 48 hours).
    ctx.clock.set(datetime(2027, 7, 9, 16, 0, tzinfo=UTC))
    assert runner.run(ctx, sid, FLOW) == {"planned": 2, "not_sent": 0}
    with ctx.database.session() as s:
        rows = {m.customer_id: m for m in s.scalars(select(Message))}
        assert {c: m.scheduled_for for c, m in rows.items()} == {
            sent.id: _at_nine(date(2027, 7, 10), "America/New_York"),
            waiting.id: _at_nine(date(2027, 7, 10), "America/Los_Angeles")}
        rows[sent.id].status, rows[sent.id].sent_at = "sent", _at_nine(date(2027, 7, 10), "America/New_York")
    # Amazon announces 15 July, after New York's email went: Los Angeles's planned row is withdrawn and planned
    # again for the 12th; New York's is not sent twice.
    with ctx.database.session() as s:
        cal.save_event(s, sid, "prime_day", on_date=date(2027, 7, 15))
        assert {m.customer_id for m in s.scalars(select(Message))} == {sent.id}
    ctx.clock.set(datetime(2027, 7, 11, 17, 0, tzinfo=UTC))
    assert runner.run(ctx, sid, FLOW) == {"planned": 1, "not_sent": 0}
    with ctx.database.session() as s:
        rows = {m.customer_id: m for m in s.scalars(select(Message))}
        assert rows[waiting.id].scheduled_for == _at_nine(date(2027, 7, 12), "America/Los_Angeles")
        assert rows[waiting.id].payload["event_on"] == "2027-07-15"
        assert rows[sent.id].status == "sent"
        # Switched off, the planned one goes and nothing is planned again.
        cal.save_event(s, sid, "prime_day", on_date=date(2027, 7, 15), enabled=False)
    assert runner.run(ctx, sid, FLOW) == {"planned": 0, "not_sent": 0}
    with ctx.database.session() as s:
        assert {m.customer_id for m in s.scalars(select(Message))} == {sent.id}


def test_at_most_per_run_rows_a_run_the_soonest_first(ctx, monkeypatch):
    from plugin.flows import shopping_calendar as flow

    scored_at = datetime(2026, 11, 1, tzinfo=UTC)
    with ctx.database.session() as s:
        st = f.store(s, timezone="America/New_York", country="US")
        sid = st.id
        east = [_shopper(s, sid, "growth", scored_at, country="US", time_zone="America/New_York").id
                for _ in range(3)]
        west = [_shopper(s, sid, "growth", scored_at, country="US", time_zone="America/Los_Angeles").id
                for _ in range(3)]
    _score(ctx, sid, scored_at)
    # A constant of the module, lowered for the test as the bench would see it with a million customers.
    monkeypatch.setattr(flow, "PER_RUN", 4)
    ctx.clock.set(datetime(2026, 11, 23, 17, 0, tzinfo=UTC))  # both zones' Black Friday moments within 48 hours
    assert runner.run(ctx, sid, FLOW)["planned"] == 4
    with ctx.database.session() as s:
        first = {m.customer_id for m in s.scalars(select(Message))}
    assert first == set(east) | {min(west)}
    ctx.clock.set(datetime(2026, 11, 23, 18, 0, tzinfo=UTC))
    assert runner.run(ctx, sid, FLOW)["planned"] == 2
