"""The delivery tests' world: the Shopify sandbox sending its webhooks to our app, the SMTP sandbox, one clock.

``Delivery.step`` does what the scheduler does each time something happens: apply the stored webhooks, run the
delivery-update flow, dispatch what is due. The carrier's timelines come from the sandbox
(sandbox/shopify/timelines.py); the expectations in the tests are written out by hand.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from base.clock import FrozenClock
from jobs.dispatch import dispatch_due
from jobs.webhooks import process_pending
from plugin.flows.runner import run_delivery_update
from plugin.marketplaces import shopify_client
from plugin.models import Customer, Message, Order, Parcel, ParcelEvent
from plugin.sync.shopify_run import sync_shop_details
from sandbox.shopify.timelines import events_for
from sandbox.smtp import ReceivedMessage, SmtpSandbox
from tests.shopify_app_env import ShopifyEnv, shopify_env

LINK = re.compile(r"https?://[^\s\"'<>]+/t/[A-Za-z0-9_.\-]+")


@dataclass
class Delivery:
    """A running world for delivery tests."""

    env: ShopifyEnv
    smtp: SmtpSandbox
    store_id: int

    @property
    def clock(self) -> FrozenClock:
        """Return the shared clock."""
        return self.env.clock

    def ctx(self) -> Any:
        """Return a job context that mails to the SMTP sandbox and links to our app."""
        ctx = self.env.ctx()
        ctx.extras["smtp_url"] = f"smtp://127.0.0.1:{self.smtp.port}"
        ctx.extras["base_url"] = self.env.url
        return ctx

    def session(self) -> Any:
        """Open a session on the app's database (commits on success)."""
        return self.env.app.extensions["aftercare.db"].session()

    def step(self) -> dict[str, Any]:
        """Apply webhooks, plan delivery updates, dispatch due mail; return the three counts."""
        ctx = self.ctx()
        applied = process_pending(ctx)
        assert not applied.get("failed"), applied
        planned = run_delivery_update(ctx, self.store_id)
        sent = dispatch_due(ctx, limit=1000, channels=["email"])
        return {"webhooks": applied, "planned": planned, "sent": sent}

    def flush(self) -> None:
        """Run the dispatcher at each moment a held update becomes due, until none is waiting."""
        while True:
            with self.session() as session:
                due = session.scalar(select(func.min(Message.scheduled_for)).where(
                    Message.store_id == self.store_id, Message.flow == "delivery_update",
                    Message.status == "scheduled"))
            if due is None:
                return
            self.clock.set(max(due, self.clock.now()))
            self.step()

    def order_for(self, customer_index: int, *, time_zone: str | None = None, locale: str | None = None) -> Any:
        """Place an order in the sandbox for a seeded customer, let it land, and set their zone/locale."""
        shop = self.env.sandbox.store
        person = shop.customers[customer_index]
        placed = self.env.sandbox.add_order(person.id, [(shop.products[0].variants[0].id, 2),
                                                        (shop.products[1].variants[0].id, 1)])
        self.step()
        with self.session() as session:
            customer = session.scalar(select(Customer).where(Customer.store_id == self.store_id,
                                                             Customer.external_id == str(person.id)))
            assert customer is not None
            # The zone and language come from the customer sync in production; set them for the case at hand.
            customer.time_zone = time_zone
            customer.locale = locale or customer.locale
        return placed

    def ship(self, placed: Any, at: datetime) -> Any:
        """Ship the order's units in one parcel at ``at`` and land the webhooks."""
        self.clock.set(at)
        parcel = self.env.sandbox.fulfil_order(placed.id)
        self.step()
        return parcel

    def play(self, placed: Any, parcel: Any, timeline: str, shipped_at: datetime,
             upto: int | None = None) -> list[Any]:
        """Play a scripted carrier timeline (its first ``upto`` steps), stepping the world after each report."""
        steps = events_for(timeline, shipped_at)[:upto]
        for s in steps:
            self.clock.set(s.at)
            self.env.sandbox.add_fulfillment_event(placed.id, s.status, s.at, fulfillment_id=parcel.id, city=s.city,
                                                   country=s.country, message=s.message,
                                                   estimated_delivery_at=s.estimated_delivery_at)
            self.step()
        return steps

    def mails_to(self, address: str) -> list[ReceivedMessage]:
        """Return the mails the SMTP sandbox got for an address, in arrival order."""
        return self.smtp.messages_to(address)

    def messages(self, order_external_id: int) -> list[Message]:
        """Return the delivery-update outbox rows of an order, oldest first."""
        with self.session() as session:
            order_id = session.scalar(select(Order.id).where(Order.store_id == self.store_id,
                                                             Order.external_id == str(order_external_id)))
            rows = list(session.scalars(select(Message).where(Message.order_id == order_id,
                                                              Message.flow == "delivery_update")
                                        .order_by(Message.id)))
            session.expunge_all()
            return rows

    def parcel(self, fulfillment_id: int) -> tuple[Parcel, list[ParcelEvent]]:
        """Return the stored parcel of a sandbox fulfilment and its events (by happened_at)."""
        with self.session() as session:
            parcel = session.scalar(select(Parcel).where(
                Parcel.fulfillment_gid == f"gid://shopify/Fulfillment/{fulfillment_id}"))
            assert parcel is not None
            events = list(session.scalars(select(ParcelEvent).where(ParcelEvent.parcel_id == parcel.id)
                                          .order_by(ParcelEvent.happened_at, ParcelEvent.id)))
            session.expunge_all()
            return parcel, events


def text_of(mail: ReceivedMessage) -> str:
    """Return the plain-text part of a received mail."""
    part = mail.message.get_body(preferencelist=("plain",))
    assert part is not None
    return part.get_content()


def html_of(mail: ReceivedMessage) -> str:
    """Return the HTML part of a received mail."""
    part = mail.message.get_body(preferencelist=("html",))
    assert part is not None
    return part.get_content()


def tracking_link(mail: ReceivedMessage) -> str:
    """Return the tracking-page link a delivery update carries."""
    found = LINK.search(text_of(mail))
    assert found is not None, text_of(mail)
    return found.group(0)


@contextmanager
def delivery_world(database_url: str, tmp_path: Path, clock: FrozenClock, start: datetime) -> Iterator[Delivery]:
    """Start the sandboxes and the app at ``start``, install the shop; yield the world."""
    clock.set(start)
    with shopify_env(database_url, tmp_path, clock, customers=6, orders=4) as env, SmtpSandbox(clock=clock) as smtp:
        store_id = env.install()
        world = Delivery(env, smtp, store_id)
        # The sync reads the shop's details (its refund policy among them) after its streams.
        sync_shop_details(world.ctx(), store_id, shopify_client(world.ctx(), store_id))
        world.step()
        yield world
