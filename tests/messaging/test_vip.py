"""VIP welcome and perks over the Shopify and SMTP sandboxes: the segment (computed by the analytics from the
orders with the merchant's rules) decides who is VIP; tagsAdd puts the store's tag on them in Shopify and
tagsRemove takes it off when they leave; the welcome goes once, with one single-use code per recipient, and
consent is honoured (the tag is not a message: it needs none)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from jobs.dispatch import dispatch_due
from plugin import flow_settings
from plugin.analytics import SegmentRules, refresh_customer_metrics
from plugin.flows import vip
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
