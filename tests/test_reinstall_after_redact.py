"""A reinstall after shop/redact asks nobody again: the real install, uninstall, shop/redact and reinstall against
the Shopify sandbox over HTTP, the flows and the dispatcher run day by day on a frozen clock, mail to the SMTP sandbox.

shop/redact erases the message log, so a reinstalled store cannot know whom it already asked; it messages about no
order fulfilled or delivered before the reinstall (plugin.flows.audience.history_cutoff), unless the merchant
turned ``message_orders_before_reinstall`` on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from base.clock import FrozenClock
from jobs.dispatch import dispatch_due
from jobs.webhooks import process_pending
from plugin import flow_settings
from plugin.context import JobContext
from plugin.flows import runner
from plugin.models import Message, Order, Store
from plugin.sync.store_run import sync_store
from sandbox.smtp import SmtpSandbox
from tests.conftest import TEST_SHOPIFY_API_KEY
from tests.shopify_app_env import ShopifyEnv, shopify_env

DAY = timedelta(days=1)
FLOWS = ("review_request", "survey", "replenishment")


@pytest.fixture
def smtp() -> Iterator[SmtpSandbox]:
    """Run the SMTP sandbox for one test."""
    with SmtpSandbox() as server:
        yield server


class World:
    """The shop, our app and the mail server, driven the way the scheduler drives them."""

    def __init__(self, env: ShopifyEnv, smtp: SmtpSandbox, start: datetime) -> None:
        self.env, self.smtp, self.start = env, smtp, start
        self.store_id = 0

    def ctx(self) -> JobContext:
        """Return a job context that sends through the SMTP sandbox."""
        return JobContext.from_app(self.env.app, sleep=lambda _s: None,
                                   extras={"smtp_url": f"smtp://127.0.0.1:{self.smtp.port}",
                                           "base_url": "https://aftercare.test"})

    def at(self, day: float) -> None:
        """Move the shared clock forward to ``day`` days after the start."""
        assert self.start + day * DAY >= self.env.clock.now(), "the story must move forward"
        self.env.clock.set(self.start + day * DAY)

    def webhooks(self) -> None:
        """Process what Shopify delivered; nothing may fail."""
        counts = process_pending(self.ctx())
        assert "failed" not in counts, counts

    def live(self, first: int, last: int) -> None:
        """Run days ``first``..``last``: webhooks, sync and the flows each morning, then every send as it falls due."""
        for day in range(first, last + 1):
            self.at(day)
            self.webhooks()
            with self.env.app.extensions["aftercare.db"].session() as s:
                store = s.get(Store, self.store_id)
                active = store is not None and store.is_sending_allowed
            if not active:
                continue
            ctx = self.ctx()
            assert sync_store(ctx, self.store_id)["status"] == "ok"
            for flow in FLOWS:
                runner.run(ctx, self.store_id, flow)
            self._drain(self.start + (day + 1) * DAY)

    def _drain(self, until: datetime) -> None:
        # Jump to each scheduled row's time (the dispatcher reschedules to the customer's send window).
        for _ in range(200):
            with self.env.app.extensions["aftercare.db"].session() as s:
                due = s.scalar(select(func.min(Message.scheduled_for)).where(
                    Message.store_id == self.store_id, Message.status == "scheduled"))
            if due is None or due >= until:
                return
            self.env.clock.set(max(self.env.clock.now(), due))
            dispatch_due(self.ctx())
        raise AssertionError("the outbox never drained")

    def order(self, customer: int, day: float) -> str:
        """Place an order in the shop for its ``customer``-th customer on ``day``; return its id."""
        shop = self.env.sandbox.store
        self.at(day)
        return str(self.env.sandbox.add_order(shop.customers[customer].id, [(shop.products[0].variants[0].id, 1)]).id)

    def messages(self) -> list[tuple[str, str, str, str]]:
        """Return (order external id, flow, step, status) of every message row of the current store."""
        with self.env.app.extensions["aftercare.db"].session() as s:
            return sorted(s.execute(select(Order.external_id, Message.flow, Message.step, Message.status)
                                    .join(Order, Order.id == Message.order_id)
                                    .where(Message.store_id == self.store_id)).all())


def _asked(order_ids: list[str]) -> list[tuple[str, str, str, str]]:
    """What the defaults send for an order delivered in time: request +7 d, survey +10 d, reminder +14 d."""
    return sorted((oid, flow, step, "sent") for oid in order_ids
                  for flow, step in (("review_request", "main"), ("review_request", "reminder"), ("survey", "main")))


def asked_about_two_orders(world: World) -> dict[str, str]:
    """Orders a and b (customers 3 and 4) on day 0, fulfilled day 1, delivered day 3, asked by day 21; return them."""
    sandbox = world.env.sandbox
    orders = {"a": world.order(3, 0), "b": world.order(4, 0)}
    world.at(1)
    for key in ("a", "b"):
        sandbox.fulfil_order(int(orders[key]))
    world.at(3)
    for key in ("a", "b"):
        sandbox.deliver_order(int(orders[key]))
    world.live(3, 21)
    assert world.messages() == _asked([orders["a"], orders["b"]])
    return orders


@contextmanager
def _reinstall_story(database_url: str, tmp_path: Path, clock: FrozenClock, smtp: SmtpSandbox,
                     opt_in: bool) -> Iterator[tuple[World, dict[str, str], int]]:
    """Install, deliver, send; uninstall on day 25, shop/redact on day 27 (48 h), reinstall on day 28; live to day 65.

    Orders: a and b delivered on day 3 (asked before the uninstall); c placed and fulfilled before the uninstall and
    delivered while the app was away (day 26); d placed before the uninstall, fulfilled and delivered after the
    reinstall (day 31); e placed after the reinstall (delivered day 33).
    """
    with shopify_env(database_url, tmp_path, clock) as env:
        yield _live_the_story(World(env, smtp, clock.now()), opt_in)


def _live_the_story(world: World, opt_in: bool) -> tuple[World, dict[str, str], int]:
    env, smtp, sandbox = world.env, world.smtp, world.env.sandbox
    world.store_id = env.install()
    orders = asked_about_two_orders(world)
    before = len(smtp.messages)
    assert before == 6
    orders["c"] = world.order(5, 22)
    world.at(22.5)
    sandbox.fulfil_order(int(orders["c"]))
    world.live(23, 24)
    orders["d"] = world.order(6, 24.5)
    world.webhooks()
    world.at(25)
    sandbox.revoke(TEST_SHOPIFY_API_KEY)
    world.webhooks()
    world.at(26)
    sandbox.deliver_order(int(orders["c"]))
    world.at(27)
    sandbox.redact_shop()
    world.webhooks()
    with env.app.extensions["aftercare.db"].session() as s:
        assert s.scalar(select(func.count()).select_from(Store)) == 0
        assert s.scalar(select(func.count()).select_from(Message)) == 0
    world.at(28)
    world.store_id = env.install()  # a new store row (SQLite may give it the old id)
    if opt_in:
        with env.app.extensions["aftercare.db"].session() as s:
            flow_settings.update(s, env.app.config["AFTERCARE"], world.store_id, "policy",
                                 {"message_orders_before_reinstall": True})
    world.live(28, 28)
    world.at(29)
    sandbox.fulfil_order(int(orders["d"]))
    orders["e"] = world.order(7, 30)
    world.at(31)
    sandbox.fulfil_order(int(orders["e"]))
    sandbox.deliver_order(int(orders["d"]))
    world.at(33)
    sandbox.deliver_order(int(orders["e"]))
    world.live(33, 65)
    return world, orders, before


def test_a_reinstall_after_shop_redact_asks_nobody_about_old_orders(database_url: str, tmp_path: Path,
                                                                  clock: FrozenClock, smtp: SmtpSandbox) -> None:
    """Old orders: zero messages over the five weeks after the reinstall; orders delivered after it: asked."""
    with _reinstall_story(database_url, tmp_path, clock, smtp, opt_in=False) as (world, orders, before):
        assert world.messages() == _asked([orders["d"], orders["e"]])
        assert len(world.smtp.messages) == before + 6
        with world.env.app.extensions["aftercare.db"].session() as s:
            backfilled = set(s.scalars(select(Order.external_id).where(Order.store_id == world.store_id)))
            store = s.get(Store, world.store_id)
            assert (store.installed_at, store.reinstalled_at) == (world.start + 28 * DAY, world.start + 28 * DAY)
        assert {orders[k] for k in "abcde"} <= backfilled


def test_the_merchant_can_choose_to_ask_about_orders_before_the_reinstall(database_url: str, tmp_path: Path,
                                                                          clock: FrozenClock,
                                                                          smtp: SmtpSandbox) -> None:
    """Turned on explicitly, the age limits alone decide again: a and b (delivered day 3, asked again from day 28:
    request and survey still inside their 30-day limits, then the reminder) and c (delivered day 26) are asked too."""
    with _reinstall_story(database_url, tmp_path, clock, smtp, opt_in=True) as (world, orders, before):
        assert world.messages() == _asked([orders[k] for k in "abcde"])
        assert len(world.smtp.messages) == before + 15


def test_the_first_install_still_asks_recently_delivered_backfilled_orders(database_url: str, tmp_path: Path,
                                                                           clock: FrozenClock,
                                                                           smtp: SmtpSandbox) -> None:
    """A shop's first install has no cutoff: an order delivered 5 days before it is asked on day 2 as before."""
    with shopify_env(database_url, tmp_path, clock) as env:
        world = World(env, smtp, clock.now())
        shop = env.sandbox.store
        variant = shop.products[0].variants[0]
        clock.set(world.start - 10 * DAY)
        order = env.sandbox.add_order(shop.customers[3].id, [(variant.id, 1)])
        clock.set(world.start - 8 * DAY)
        env.sandbox.fulfil_order(order.id)
        clock.set(world.start - 5 * DAY)
        env.sandbox.deliver_order(order.id)
        world.at(0)
        world.store_id = env.install()
        with env.app.extensions["aftercare.db"].session() as s:
            assert s.get(Store, world.store_id).reinstalled_at is None
        world.live(0, 16)
        assert world.messages() == _asked([str(order.id)])
