"""A shop/redact that arrives after the merchant installed the app again erases the old install, not the new one.

Shopify sends shop/redact 48 hours after an uninstall (https://shopify.dev/docs/apps/build/privacy-law-compliance),
also when the merchant reinstalled in between. The real install, uninstall, reinstall and shop/redact against the
Shopify sandbox over HTTP; the flows and the dispatcher day by day on a frozen clock; mail to the SMTP sandbox.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from base.clock import FrozenClock
from plugin import shopping_calendar
from plugin.models import (
    Base,
    ComplianceRequest,
    Customer,
    FlowSettings,
    Store,
    Suppression,
    SyncState,
)
from plugin.webhooks.compliance import email_digest
from sandbox.smtp import SmtpSandbox
from tests.conftest import TEST_SHOPIFY_API_KEY
from tests.shopify_app_env import shopify_env
from tests.test_reinstall_after_redact import World, _asked, asked_about_two_orders

# Tables that may still hold rows of the store right after the redaction: the store and the merchant's settings,
# the compliance records, the shop/redact delivery itself (for replay detection) and the suppression digests.
KEPT = {"merchant", "store", "flow_settings", "shopping_event", "compliance_request", "webhook_event", "suppression"}


@pytest.fixture
def smtp() -> Iterator[SmtpSandbox]:
    """Run the SMTP sandbox for one test."""
    with SmtpSandbox() as server:
        yield server


def test_a_late_shop_redact_erases_the_old_install_and_keeps_the_new_one(database_url: str, tmp_path: Path,
                                                                        clock: FrozenClock,
                                                                        smtp: SmtpSandbox) -> None:
    with shopify_env(database_url, tmp_path, clock) as env:
        world, sandbox, db = World(env, smtp, clock.now()), env.sandbox, env.app.extensions["aftercare.db"]
        world.store_id = env.install()
        shop = sandbox.store
        unsubscribed = shop.customers[4].email
        orders = asked_about_two_orders(world)
        with db.session() as s:
            # The customer of order b unsubscribes after being asked.
            s.add(Suppression(store_id=world.store_id, email=unsubscribed.lower(), reason="unsubscribe",
                              created_at=clock.now()))
            s.commit()
        world.at(22)
        sandbox.revoke(TEST_SHOPIFY_API_KEY)
        world.webhooks()
        world.at(23)
        assert env.install() == world.store_id  # reinstalled within the 48 hours: the same store row
        world.live(23, 23)
        with db.session() as s:
            flow_settings_before = s.scalar(select(func.count()).select_from(FlowSettings))
            # The merchant's shopping calendar is a setting: it stays too.
            shopping_calendar.save_event(s, world.store_id, "christmas", enabled=False)
            s.commit()
        world.at(24)
        sandbox.redact_shop()
        world.webhooks()

        with db.session() as s:
            store = s.get(Store, world.store_id)
            assert store is not None and store.status == "active" and store.is_sending_allowed
            assert store.reinstalled_at == clock.now()
            for table in Base.metadata.sorted_tables:
                if table.name in KEPT or "store_id" not in table.c:
                    continue
                count = s.scalar(select(func.count()).select_from(table).where(table.c.store_id == store.id))
                assert count == 0, table.name
            assert [(r.email, r.reason) for r in s.scalars(select(Suppression))] == [
                (email_digest(unsubscribed), "redact")]
            assert s.scalar(select(func.count()).select_from(FlowSettings)) == flow_settings_before
            assert shopping_calendar.store_edit(s, world.store_id, "christmas").enabled is False
            assert s.scalar(select(func.count()).select_from(SyncState)) == 0
            request = s.scalars(select(ComplianceRequest).where(ComplianceRequest.kind == "shop/redact")).one()
            assert request.store_id == store.id
            assert request.result["store_deleted"] is False and request.result["reinstalled"] is True
            assert request.result["rows_erased"] > 0

        # The new install goes on: the sync reads the shop again, the old orders are never asked again, a new
        # order is asked, and the customer who unsubscribed before is not emailed.
        sent_before = len(smtp.messages)
        orders["c"] = world.order(5, 25)
        orders["d"] = world.order(4, 25)
        world.at(26)
        for key in ("c", "d"):
            sandbox.fulfil_order(int(orders[key]))
        world.at(27)
        for key in ("c", "d"):
            sandbox.deliver_order(int(orders[key]))
        world.live(27, 50)
        with db.session() as s:
            assert s.scalar(select(func.count()).select_from(Customer).where(
                Customer.store_id == world.store_id)) == len(shop.customers)
        sent = [m for m in world.messages() if m[3] == "sent"]
        assert sent == _asked([orders["c"]])
        new_mail = smtp.messages[sent_before:]
        assert len(new_mail) == 3
        assert all(unsubscribed.lower() not in (to.lower() for to in m.envelope_to) for m in new_mail)
        assert len(smtp.messages_to(unsubscribed)) == 3  # order b's request, reminder and survey, all before
