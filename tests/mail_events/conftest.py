"""Fixtures for the mail providers' event webhooks: an app configured per test and three stores that mailed c1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from plugin import create_app
from plugin.models import Message, Suppression
from tests.conftest import make_settings, wipe
from tests.messaging import seed
from tests.messaging.conftest import IN_WINDOW

POSTMARK_PASSWORD = "pm-webhook-password-0123456789"
FIRST_ID = "<first.a@calmsoaps.example>"


@pytest.fixture
def make_app(database_url, tmp_path, clock) -> Iterator[Callable[..., Flask]]:
    """Build the app with these ``[mail]`` settings (and the Postmark password in its secrets)."""
    built: list[Flask] = []

    def build(**mail: Any) -> Flask:
        settings = make_settings(database_url, tmp_path / f"instance{len(built)}", mail=mail,
                                 secrets={"postmark_webhook_password": POSTMARK_PASSWORD})
        application = create_app(settings, clock=clock)
        built.append(application)
        return application

    yield build
    for application in built:
        wipe(application.extensions["aftercare.db"].engine)
        application.extensions["aftercare.db"].dispose()


@dataclass(frozen=True)
class World:
    """Store A and store B each emailed c1@example.com; store C has a c1 too but never emailed them."""

    store_a: int
    store_b: int
    store_c: int


def seed_world(app: Flask) -> World:
    """Create the three stores, their sent emails and what each still has scheduled."""
    with app.extensions["aftercare.db"].session() as s:
        stores = [seed.store(s, external_id=f"shop-{name}.myshopify.com") for name in "abc"]
        for name, store in zip("abc", stores, strict=True):
            c1, c2 = seed.customer(s, store, 1), seed.customer(s, store, 2)
            if name != "c":
                first = seed.message(s, store, c1, when=IN_WINDOW - timedelta(days=1), key=f"{name}-first")
                first.status, first.handed_at, first.sent_at = "sent", first.scheduled_for, first.scheduled_for
                first.provider_id = FIRST_ID.replace(".a@", f".{name}@")
            seed.message(s, store, c1, flow="replenishment", marketing=True, key=f"{name}-reminder",
                         when=IN_WINDOW + timedelta(days=7))
            seed.message(s, store, c1, flow="survey", key=f"{name}-survey", when=IN_WINDOW + timedelta(days=2))
            seed.message(s, store, c2, flow="replenishment", marketing=True, key=f"{name}-c2",
                         when=IN_WINDOW + timedelta(days=7))
        return World(*(store.id for store in stores))


def state(app: Flask) -> tuple[list[tuple[int, str, str]], dict[str, tuple[str, str | None]]]:
    """Return the suppression list and every message's (status, reason), by idempotency key."""
    with app.extensions["aftercare.db"].session() as s:
        rows = sorted((r.store_id, r.email, r.reason) for r in s.scalars(select(Suppression)))
        return rows, {m.idempotency_key: (m.status, m.skip_reason) for m in s.scalars(select(Message))}


def untouched() -> dict[str, tuple[str, str | None]]:
    """Return every message's state as seeded."""
    found: dict[str, tuple[str, str | None]] = {}
    for name in "abc":
        if name != "c":
            found[f"{name}-first"] = ("sent", None)
        for key in ("reminder", "survey", "c2"):
            found[f"{name}-{key}"] = ("scheduled", None)
    return found


def after(stores: str, kind: str) -> dict[str, tuple[str, str | None]]:
    """Return the expected states once c1 hard-bounced (``bounce``) or complained, in the named stores."""
    code = {"bounce": "bounced", "complaint": "complained"}[kind]
    expected = untouched()
    for name in stores:
        expected[f"{name}-first"] = ("failed" if kind == "bounce" else "sent", code)
        expected[f"{name}-reminder"] = ("cancelled", code)
        expected[f"{name}-survey"] = ("cancelled", code)
    return expected
