"""Birthday emails: 3 days before at 09:00 local, across time zones, DST and 29 February, once a year.

The expected moments are computed here with zoneinfo directly; the flow is run hour by hour and each row must
appear in the first run at or after its moment, never before, and only once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from plugin import flow_settings
from plugin.flows import runner
from plugin.models import Message
from tests.jobs import factory as f

HOUR = timedelta(hours=1)


def _expected(day: date, zone: str) -> datetime:
    return datetime(day.year, day.month, day.day, 9, 0, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def _walk(ctx, sid, start: datetime, hours: int) -> dict[int, tuple[datetime, datetime, str]]:
    """Run the flow every hour; return {customer: (first run that wrote it, scheduled_for, key)}."""
    seen: dict[int, tuple[datetime, datetime, str]] = {}
    for h in range(hours):
        now = start + h * HOUR
        ctx.clock.set(now)
        runner.run(ctx, sid, "birthday")
        with ctx.database.session() as s:
            for m in s.scalars(select(Message).where(Message.flow == "birthday")):
                seen.setdefault(m.customer_id, (now, m.scheduled_for, m.idempotency_key))
    return seen


def test_three_days_before_at_nine_local_in_every_zone_and_across_dst(ctx):
    # Berlin's clocks go forward on 29 March 2026: a birthday on 1 April is greeted at 09:00 CEST = 07:00 UTC.
    zones = ["Asia/Tokyo", "America/Los_Angeles", "Europe/London", "Australia/Sydney", "Europe/Berlin",
             "Pacific/Kiritimati", "Pacific/Pago_Pago"]
    birthday = date(1990, 4, 1)
    with ctx.database.session() as s:
        st = f.store(s, timezone="America/New_York")
        people = {z: f.customer(s, st.id, time_zone=z, birthday=birthday) for z in zones}
        store_zone = f.customer(s, st.id, birthday=birthday)  # no zone, no country: the store's
        other_day = f.customer(s, st.id, time_zone="Europe/London", birthday=date(1990, 4, 2))
        nobody = f.customer(s, st.id, time_zone="Europe/London", birthday=None)
        sid = st.id
    seen = _walk(ctx, sid, datetime(2026, 3, 27, 0, 0, tzinfo=UTC), 84)
    expected = {people[z].id: _expected(date(2026, 3, 29), z) for z in zones}
    expected[store_zone.id] = _expected(date(2026, 3, 29), "America/New_York")
    expected[other_day.id] = _expected(date(2026, 3, 30), "Europe/London")
    assert {cid: sched for cid, (_first, sched, _key) in seen.items()} == expected
    for cid, (first, sched, key) in seen.items():
        assert sched <= first < sched + HOUR, (cid, first, sched)
        assert key.endswith(f"customer={cid}:year=2026:step=main")
    assert expected[people["Europe/Berlin"].id] == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)
    assert nobody.id not in seen
    with ctx.database.session() as s:
        rows = s.scalars(select(Message).where(Message.flow == "birthday")).all()
        assert len(rows) == len(expected)
        assert {(m.marketing, m.payload["discount_percent"], m.payload["discount_valid_days"]) for m in rows} == \
            {(True, 20, 14)}


def test_leap_day_birthdays_fall_on_the_28th_in_common_years_and_once_a_year(ctx):
    with ctx.database.session() as s:
        st = f.store(s)
        leap = f.customer(s, st.id, time_zone="Europe/London", birthday=date(2000, 2, 29))
        sid = st.id
    # 2027 has no 29 February: celebrated on the 28th, greeted on the 25th.
    seen = _walk(ctx, sid, datetime(2027, 2, 24, 0, 0, tzinfo=UTC), 72)
    assert seen[leap.id][1] == datetime(2027, 2, 25, 9, 0, tzinfo=UTC)
    # A second pass over the same days writes nothing more.
    _walk(ctx, sid, datetime(2027, 2, 25, 0, 0, tzinfo=UTC), 30)
    with ctx.database.session() as s:
        assert len(s.scalars(select(Message).where(Message.flow == "birthday")).all()) == 1
        s.execute(Message.__table__.delete())
    # 2028 is a leap year: greeted on 26 February for the 29th.
    seen = _walk(ctx, sid, datetime(2028, 2, 25, 0, 0, tzinfo=UTC), 72)
    assert seen[leap.id][1] == datetime(2028, 2, 26, 9, 0, tzinfo=UTC)
    assert seen[leap.id][2].endswith(":year=2028:step=main")


def test_settings_lead_days_time_and_no_code(ctx):
    with ctx.database.session() as s:
        st = f.store(s)
        c = f.customer(s, st.id, time_zone="Asia/Tokyo", birthday=date(1985, 12, 31))
        gone = f.customer(s, st.id, time_zone="Asia/Tokyo", birthday=date(1985, 12, 31), email=None)
        flow_settings.update(s, ctx.config, st.id, "birthday", {"lead_days": 1, "send_time": "10:30",
                                                                "discount_percent": 0})
        sid = st.id
    seen = _walk(ctx, sid, datetime(2026, 12, 29, 12, 0, tzinfo=UTC), 36)
    assert seen[c.id][1] == datetime(2026, 12, 30, 10, 30, tzinfo=ZoneInfo("Asia/Tokyo")).astimezone(UTC)
    with ctx.database.session() as s:
        rows = {m.customer_id: m for m in s.scalars(select(Message).where(Message.flow == "birthday"))}
        assert "discount_percent" not in rows[c.id].payload
        assert (rows[gone.id].status, rows[gone.id].skip_reason) == ("skipped", "no_contact_access")
