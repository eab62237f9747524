"""VIP welcome and perks over the Shopify and SMTP sandboxes: the segment (computed by the analytics from the
orders with the merchant's rules) decides who is VIP; tagsAdd puts the store's tag on them in Shopify and
tagsRemove takes it off when they leave; the welcome goes once, with one single-use code per recipient, and
consent is honoured (the tag is not a message: it needs none)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from jobs.dispatch import dispatch_due
from plugin import flow_settings
from plugin.analytics import SegmentRules, refresh_customer_metrics
from plugin.flows import vip
from plugin.messaging import locales, templates
from plugin.models import Message, Order, VipMember
from sandbox.smtp import SmtpSandbox
from tests.conftest import wipe
from tests.jobs import factory as f
from tests.messaging.conftest import IN_WINDOW
from tests.shopify_sync_harness import make_harness

DAY = timedelta(days=1)


def _segments(database, sid, now):
    with database.session() as s:
        refresh_customer_metrics(s, sid, now, SegmentRules())


def test_vip_tags_follow_the_segment_and_the_welcome_goes_once(database, tmp_path) -> None:
    harness = make_harness(database, tmp_path, customers=4, orders=3)
    try:
        with SmtpSandbox() as smtp:
            harness.ctx.extras["smtp_url"] = f"smtp://127.0.0.1:{smtp.port}"
            harness.clock.set(IN_WINDOW)
            now = IN_WINDOW
            remote = harness.sandbox.store.customers[:3]
            sid = harness.store_id
            with database.session() as s:
                kim = f.customer(s, sid, email="kim@example.com", time_zone="Europe/London")
                lee = f.customer(s, sid, email="lee@example.com", consent=False, time_zone="Europe/London")
                max_ = f.customer(s, sid, email="max@example.com", time_zone="Europe/London")
                for c, r in zip((kim, lee, max_), remote, strict=True):
                    c.external_id = str(r.id)
                # VIP: over $500 in 12 months and 4 orders. Max has the spend but three orders only.
                for c, n in ((kim, 4), (lee, 5), (max_, 3)):
                    for i in range(n):
                        f.order(s, sid, c.id, now - (30 + 20 * i) * DAY, total_price=Decimal("150"))
                flow_settings.update(s, harness.ctx.config, sid, "vip", {"tag": "Aftercare VIP"})
                ids = {"kim": kim.id, "lee": lee.id, "max": max_.id}
            _segments(database, sid, now)
            counts = vip.run(harness.ctx, sid)
            assert counts == {"entered": 2, "left": 0, "tags_added": 2, "tags_removed": 0, "tag_errors": 0,
                              "welcomed": 2, "not_sent": 0}
            tags = {r.id: r.tags for r in remote}
            assert "Aftercare VIP" in tags[remote[0].id] and "Aftercare VIP" in tags[remote[1].id]
            assert "Aftercare VIP" not in tags[remote[2].id]
            assert dispatch_due(harness.ctx) == {"sent": 1, "skipped": 1, "skipped:no_consent": 1}
            codes = [d for d in harness.sandbox.shop_state().discounts.values() if d.code.startswith("VIP-")]
            assert [(c.percentage, c.usage_limit, c.customer_ids, c.ends_at) for c in codes] == [
                (0.15, 1, (f"gid://shopify/Customer/{remote[0].id}",), now + 60 * DAY)]
            html = smtp.messages[0].message.get_body(("html",)).get_content()
            assert smtp.messages[0].message["To"] == "kim@example.com" and codes[0].code in html

            # The next hour: nothing changes, nothing is called twice.
            harness.clock.advance(hours=1)
            assert vip.run(harness.ctx, sid) == {"entered": 0, "left": 0, "tags_added": 0, "tags_removed": 0,
                                                 "tag_errors": 0, "welcomed": 0, "not_sent": 0}
            # Kim's orders are cancelled: she leaves the segment and loses the tag; Lee keeps it.
            with database.session() as s:
                for o in s.scalars(select(Order).where(Order.customer_id == ids["kim"])):
                    o.cancelled_at = now
            _segments(database, sid, harness.clock.now())
            counts = vip.run(harness.ctx, sid)
            assert (counts["left"], counts["tags_removed"], counts["tags_added"]) == (1, 1, 0)
            assert "Aftercare VIP" not in remote[0].tags and "Aftercare VIP" in remote[1].tags
            # She comes back: tagged again, but welcomed only once.
            with database.session() as s:
                for o in s.scalars(select(Order).where(Order.customer_id == ids["kim"])):
                    o.cancelled_at = None
            _segments(database, sid, harness.clock.now())
            counts = vip.run(harness.ctx, sid)
            assert (counts["entered"], counts["tags_added"], counts["welcomed"]) == (1, 1, 0)
            assert "Aftercare VIP" in remote[0].tags
            with database.session() as s:
                members = {m.customer_id: (m.left_at, m.tagged) for m in s.scalars(select(VipMember))}
                assert members == {ids["kim"]: (None, True), ids["lee"]: (None, True)}
                assert len(s.scalars(select(Message).where(Message.flow == "vip")).all()) == 2
    finally:
        harness.stop()
        wipe(database.engine)


def _vips(harness, database, now, n):
    """Make the first ``n`` sandbox customers VIPs here (5 orders of $150 in the last year); return their ids."""
    remote = harness.sandbox.store.customers[:n]
    ids = []
    with database.session() as s:
        for i, r in enumerate(remote):
            c = f.customer(s, harness.store_id, email=f"vip{i}@example.com", time_zone="Europe/London")
            c.external_id = str(r.id)
            for k in range(5):
                f.order(s, harness.store_id, c.id, now - (30 + 20 * k) * DAY, total_price=Decimal("150"))
            ids.append(c.id)
    return remote, ids


@pytest.mark.parametrize("kind", ["free_shipping", "amount"])
def test_the_chosen_perk_is_one_single_use_code_per_recipient_even_on_a_retried_dispatch(database, tmp_path, kind):
    harness = make_harness(database, tmp_path, customers=4, orders=3)
    try:
        with SmtpSandbox() as smtp:
            harness.ctx.extras["smtp_url"] = f"smtp://127.0.0.1:{smtp.port}"
            harness.clock.set(IN_WINDOW)
            now, sid = IN_WINDOW, harness.store_id
            remote, ids = _vips(harness, database, now, 2)
            with database.session() as s:
                flow_settings.update(s, harness.ctx.config, sid, "vip", {"perk_kind": kind, "perk_amount": 25})
            _segments(database, sid, now)
            assert vip.run(harness.ctx, sid)["welcomed"] == 2
            assert dispatch_due(harness.ctx) == {"sent": 2}

            def codes():
                return sorted(((d.customer_ids, d.code, d.free_shipping, d.amount_cents, d.percentage, d.usage_limit,
                                d.applies_once_per_customer, d.countries, d.ends_at)
                               for d in harness.sandbox.shop_state().discounts.values()), key=str)
            with database.session() as s:
                sent = {m.customer_id: m.payload["discount_code"] for m in s.scalars(select(Message))}
            amount = None if kind == "free_shipping" else 2500
            expected = sorted(((f"gid://shopify/Customer/{r.id}",), sent[cid], kind == "free_shipping", amount, None,
                               1, True, None, now + 60 * DAY) for r, cid in zip(remote, ids, strict=True))
            expected.sort(key=str)
            assert codes() == expected
            assert all(code.startswith("VIP-") for code in sent.values()) and len(set(sent.values())) == 2
            words = "your next order ships free" if kind == "free_shipping" else "$25.00 off your next order"
            for m in smtp.messages:
                html = m.message.get_body(("html",)).get_content()
                assert words in html and any(code in html for code in sent.values())
            # A crash after Shopify made the code but before it was recorded: the retried dispatch meets TAKEN
            # for its own code, sends the same email, and no second code exists.
            with database.session() as s:
                for m in s.scalars(select(Message)):
                    m.status, m.payload = "scheduled", {**m.payload, "discount_created": False}
            assert dispatch_due(harness.ctx) == {"sent": 2}
            assert codes() == expected
            # Later runs never welcome (or make a code for) them again.
            harness.clock.advance(hours=1)
            assert vip.run(harness.ctx, sid)["welcomed"] == 0
            assert dispatch_due(harness.ctx) == {} and codes() == expected
    finally:
        harness.stop()
        wipe(database.engine)


def test_a_renamed_vip_tag_is_removed_and_the_new_one_added(database, tmp_path) -> None:
    harness = make_harness(database, tmp_path, customers=5, orders=3)
    try:
        harness.clock.set(IN_WINDOW)
        now, sid = IN_WINDOW, harness.store_id
        remote, ids = _vips(harness, database, now, 3)
        bystander = harness.sandbox.store.customers[3]
        before = {r.id: set(r.tags) for r in harness.sandbox.store.customers}
        with database.session() as s:
            flow_settings.update(s, harness.ctx.config, sid, "vip", {"tag": "Aftercare VIP", "perk_percent": 0})
        _segments(database, sid, now)
        assert vip.run(harness.ctx, sid)["tags_added"] == 3
        # The third VIP leaves (orders cancelled) before the rename: only the tag they still carry comes off.
        with database.session() as s:
            for o in s.scalars(select(Order).where(Order.customer_id == ids[2])):
                o.cancelled_at = now
        _segments(database, sid, now)
        harness.clock.advance(hours=1)
        assert vip.run(harness.ctx, sid)["tags_removed"] == 1
        with database.session() as s:
            flow_settings.update(s, harness.ctx.config, sid, "vip", {"tag": "Gold"})
        harness.clock.advance(hours=1)
        counts = vip.run(harness.ctx, sid)
        assert (counts["tags_added"], counts["tags_removed"], counts["tag_errors"]) == (2, 2, 0)
        tags = {r.id: set(r.tags) for r in harness.sandbox.store.customers}
        assert tags == {**before, remote[0].id: before[remote[0].id] | {"Gold"},
                        remote[1].id: before[remote[1].id] | {"Gold"}}
        assert tags[bystander.id] == before[bystander.id] and tags[remote[2].id] == before[remote[2].id]
        with database.session() as s:
            rows = {m.customer_id: (m.tag, m.tagged, m.left_at is None) for m in s.scalars(select(VipMember))}
        assert rows == {ids[0]: ("Gold", True, True), ids[1]: ("Gold", True, True),
                        ids[2]: ("Aftercare VIP", False, False)}
        # The next hour: nothing to do. The leaver coming back gets the new name only.
        harness.clock.advance(hours=1)
        counts = vip.run(harness.ctx, sid)
        assert (counts["tags_added"], counts["tags_removed"]) == (0, 0)
        with database.session() as s:
            for o in s.scalars(select(Order).where(Order.customer_id == ids[2])):
                o.cancelled_at = None
        _segments(database, sid, harness.clock.now())
        counts = vip.run(harness.ctx, sid)
        assert (counts["tags_added"], counts["tags_removed"]) == (1, 0)
        assert set(remote[2].tags) == before[remote[2].id] | {"Gold"}
    finally:
        harness.stop()
        wipe(database.engine)


@pytest.mark.parametrize("locale", locales.SUPPORTED)
def test_each_locale_words_the_three_perks_differently(locale):
    """The shipped welcome says which perk the code is: percentage, amount (in the money format) or free shipping."""
    source = templates.default_source("vip", "main", locale)
    html = {}
    for kind, extra in (("percent", {"discount_percent": 37}), ("amount", {"discount_amount": Decimal("48")}),
                        ("free_shipping", {"discount_free_shipping": True, "discount_percent": None})):
        ctx = {**templates.sample_context("vip", "main", locale), **extra}
        html[kind] = templates.render_email("vip", source, ctx, locale, None).text
        assert "VIP-8E21F0A4C9" in html[kind]
    assert len(set(html.values())) == 3
    assert "48" in html["amount"] and "48" not in html["percent"] and "48" not in html["free_shipping"]
    assert "37" in html["percent"] and "37" not in html["amount"] and "37" not in html["free_shipping"]
