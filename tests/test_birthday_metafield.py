"""The birthday comes from the customer metafield the merchant names, read over the Shopify sandbox (month and day
only; 29 February kept); a customer's own answer on the birthday page is never overwritten."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from plugin import flow_settings
from plugin.flows import birthday
from plugin.models import Customer
from tests.conftest import wipe
from tests.jobs import factory as f
from tests.shopify_sync_harness import START, make_harness


def test_parse_birthday_values():
    assert birthday.parse_birthday("1990-04-01") == date(2000, 4, 1)
    assert birthday.parse_birthday("--02-29") == date(2000, 2, 29)
    assert birthday.parse_birthday("12-31") == date(2000, 12, 31)
    assert birthday.parse_birthday("2001-02-30") is None
    assert birthday.parse_birthday("soon") is None


def test_metafield_is_read_for_every_customer_and_the_page_wins(database, tmp_path):
    harness = make_harness(database, tmp_path, customers=6, orders=3)
    try:
        remote = harness.sandbox.store.customers[:5]
        values = ["1990-04-01", "--02-29", "soon", None, "1985-07-14"]
        for r, v in zip(remote, values, strict=True):
            if v is not None:
                r.metafields["facts.birth_date"] = ("date", v)
        remote[0].metafields["other.birth_date"] = ("date", "1970-01-01")
        sid = harness.store_id
        with database.session() as s:
            rows = []
            for r in remote:
                c = f.customer(s, sid)
                c.external_id = str(r.id)
                rows.append(c)
            # The customer said 3 March on the page: the metafield does not override it.
            rows[4].birthday, rows[4].birthday_changed_at = date(2000, 3, 3), START
            ids = [c.id for c in rows]
        assert birthday.read_metafields(harness.ctx, sid) == {"off": 1}
        with database.session() as s:
            flow_settings.update(s, harness.ctx.config, sid, "birthday", {"metafield": "facts.birth_date"})
        assert birthday.read_metafields(harness.ctx, sid) == {"read": 4, "set": 2}
        with database.session() as s:
            got = {c.id: c.birthday for c in s.scalars(select(Customer).where(Customer.id.in_(ids)))}
        assert got == {ids[0]: date(2000, 4, 1), ids[1]: date(2000, 2, 29), ids[2]: None, ids[3]: None,
                       ids[4]: date(2000, 3, 3)}
        # The next pass reads them again and changes nothing.
        assert birthday.read_metafields(harness.ctx, sid) == {"read": 4, "set": 0}
    finally:
        harness.stop()
        wipe(database.engine)
