"""`aftercare demo`: the whole product on one machine, wired to the sandboxes, with 90 simulated days.

Order of things: sandboxes (Amazon seeded at the end of the simulated period, Shopify and Judge.me at its start,
SMTP writing .eml files), the app on SQLite in the instance folder configured through ``load_config`` (every
base URL pointing at a sandbox, development secrets from the instance folder), then — on the first run — the
real install (a sandbox session token exchanged at ``/auth/token-exchange``), the merchant's setup, the Amazon
seller connected through the admin's connect function, the backfill, and the simulation; later runs rebuild
the sandboxes from the journal, re-install quietly (fresh tokens) and reuse the data.

Time travel: one clock (FrozenClock, then the wall clock once serving) is shared by the app, the jobs and all
sandboxes. The Shopify and Judge.me stores end at the simulation's start and grow through ``ShopperWorld``
only as the clock passes each event; the Amazon sandbox hides orders purchased after ``clock.now()`` and
evaluates every order's status timeline at ``clock.now()``, so no flow ever sees the future.
"""

from __future__ import annotations

import heapq
import json
import logging
import os
import random
import re
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import func, select

from base.clock import FrozenClock, SystemClock
from connectors.amazon.marketplaces import country_of, region_of
from demo import outbox
from demo.world import ShopperWorld, replay
from jobs.runner import run_job
from jobs.schedule import DAY, HOUR, JOBS, JobSpec, SchedulerService
from plugin import create_app, flow_settings, sync
from plugin.admin.settings import connect_amazon
from plugin.admin.standalone import create_admin_user
from plugin.auth.install import install_from_grant
from plugin.auth.tokens import exchange_session_token
from plugin.config import SECRET_VARIABLES, Config, load_config
from plugin.context import JobContext
from plugin.guides import new_from_starter
from plugin.migrate import upgrade
from plugin.models import DeliveryProblem, Merchant, Message, Order, Product, Store, SyncState, Ticket, VipMember
from plugin.secrets_store import set_credential
from plugin.shopping_calendar import save_event
from plugin.tickets import resolve_ticket, suggested_resolution
from sandbox.amazon import AmazonSandbox
from sandbox.judgeme import DEMO_TOKEN, JudgemeSandbox
from sandbox.server import ServerThread
from sandbox.shopify import DEFAULT_SHOP, ShopifySandbox, mint_session_token
from sandbox.shopify.admin_frame import AdminFrame
from sandbox.smtp import SmtpSandbox

REQUEST_TIMEOUT = 30
DEMO_LWA_CLIENT_ID = "amzn1.application-oa2-client.aftercare-demo"
DEMO_LWA_CLIENT_SECRET = "amzn1.oa2-cs.v1.aftercare-demo-sandbox"  # noqa: S105 - a sandbox credential
DEMO_EMAIL = "merchant@aftercare-demo.example"
SIMULATED_STREAM = "demo:simulated"
SYNC_TARGETS = ("plugin.sync.store_run:sync_store",)
# How often each declared job runs inside the simulation (at least its real interval): the flows work in days,
# so two runs a day show the same behaviour at a fraction of the cost. Shopify changes arrive by webhook
# between the syncs (every other day; Amazon orders are solicited weeks after they arrive). Dispatch runs
# every second simulated hour that has a message due: a two-hour step always lands inside a customer's
# two-hour local send window (09:00-11:00 by default), whatever the zone.
SIM_FLOOR = {"sync": 2 * DAY, "webhooks": 2 * HOUR, "dispatch": 2 * HOUR, "replenishment_learn": DAY,
             "amazon_solicitations": DAY, "amazon_feedback": 3 * DAY, "metrics_snapshot": 15 * DAY,
             "overview_figures": 15 * DAY}
DEFAULT_FLOOR = 12 * HOUR
# Customers' reactions to the emails they get.
SURVEY_ANSWER_SHARE = 0.45
SURVEY_SCORES = (10, 10, 9, 9, 9, 8, 7, 6, 5, 3, 0)
REORDER_CLICK_SHARE = 0.35
TICKET_RESOLVE_AFTER = timedelta(days=2)
# The usage guides the merchant switches on: a shipped starter and the sandbox catalogue's product type it fits
# (the simulated shoppers mostly re-buy their coffee and vitamins; first purchases of these types do happen).
DEMO_GUIDES = (("coffee", "Coffee"), ("supplements", "Supplements"), ("skincare", "Shaving"))


class DemoClock(FrozenClock):
    """The demo's one clock: frozen and stepped during the simulation, then the wall clock while serving."""

    def __init__(self, start: datetime):
        super().__init__(start)
        self.live = False

    def now(self) -> datetime:
        """Return the simulated time, or the wall time once live."""
        return SystemClock().now() if self.live else super().now()

    def go_live(self) -> None:
        """Follow the wall clock from now on."""
        self.live = True


@dataclass
class DemoOptions:
    """What `aftercare demo` was asked to do."""

    instance: Path
    port: int = 8000
    customers: int = 200
    orders: int = 800
    amazon_orders: int = 200
    days: int = 90
    seed: int = 42
    amazon_seed: int = 7
    fresh: bool = False
    echo: Callable[[str], None] = print
    # End of the simulated period (default: the current hour); tests pin it for reproducible runs.
    end: datetime | None = None


@dataclass
class DemoResult:
    """What a started demo offers: its URLs, credentials and a few figures."""

    app_url: str
    embedded_url: str
    login_url: str
    login_email: str
    login_password: str
    outbox_url: str
    shopify_store_id: int
    amazon_store_id: int
    reused: bool
    seconds: float
    counts: dict[str, int] = field(default_factory=dict)


class _LateApp:
    """A WSGI app whose target is set after the server (and so its port) exists."""

    def __init__(self) -> None:
        self.app: Any = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        return self.app(environ, start_response)


class Demo:
    """Start the sandboxes and the app, install, backfill and simulate (or reuse), then serve until stopped."""

    def __init__(self, options: DemoOptions):
        self.o = options
        self.instance = options.instance.resolve()
        self.db_path = self.instance / "demo.sqlite"
        self.outbox_dir = self.instance / "demo-outbox"
        self.state_path = self.instance / "demo-state.json"
        self.servers: list[Any] = []
        self.stoppers: list[Callable[[], None]] = []
        self.scheduler: Any = None
        self.job_seconds: dict[str, float] = {}

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> DemoResult:
        """Bring everything up; returns when the admin is ready to serve (servers run in threads)."""
        started = time.perf_counter()
        self.instance.mkdir(parents=True, exist_ok=True)
        state = self._load_state()
        reused = state is not None and state.get("completed") is True
        if not reused:
            state = self._new_state()
        self.state = state
        start, end = datetime.fromisoformat(state["start"]), datetime.fromisoformat(state["end"])
        self.clock = DemoClock(end)
        self._start_sandboxes(state, start, end)
        self._start_app(state)
        if reused:
            self.o.echo(f"Reusing the demo data in {self.instance} (--fresh starts over)")
            counts = self._resume(state, end)
        else:
            counts = self._first_run(state, start, end)
        self.clock.go_live()
        return DemoResult(app_url=self.app_url, embedded_url=f"{self.shopify_url}/admin/apps/{self.client_id}",
                          login_url=f"{self.app_url}/admin/login", login_email=DEMO_EMAIL,
                          login_password=state["password"], outbox_url=f"{self.app_url}/demo/outbox/",
                          shopify_store_id=self.shop_store_id, amazon_store_id=self.amazon_store_id,
                          reused=reused, seconds=time.perf_counter() - started, counts=counts)

    def start_scheduler(self) -> None:
        """Run the declared jobs in the background while serving (lease, intervals as in production)."""


        service = SchedulerService(self.live_ctx)
        scheduler = service.build(BackgroundScheduler)
        service.heartbeat()
        scheduler.start()
        self.scheduler = scheduler

        def stop_scheduler() -> None:
            # Do not wait for a running job (a report poll may be sleeping): Ctrl-C must answer at once; an
            # interrupted job's transaction rolls back and the job is idempotent.
            scheduler.shutdown(wait=False)
            service.stop()  # releases the lease at once

        self.stoppers.insert(0, stop_scheduler)

    def stop(self) -> None:
        """Stop the scheduler and every server thread (safe to call twice)."""
        while self.stoppers:
            self.stoppers.pop(0)()

    # -- state ---------------------------------------------------------------------------------------------------
    def _load_state(self) -> dict[str, Any] | None:
        if self.o.fresh:
            self._wipe("--fresh: starting over")
            return None
        if not self.state_path.exists():
            if self.db_path.exists():
                self._wipe("an earlier demo run did not finish: starting over")
            return None
        state = json.loads(self.state_path.read_text(encoding="utf-8"))
        if not state.get("completed") or not self.db_path.exists():
            self._wipe("an earlier demo run did not finish: starting over")
            return None
        return state

    def _wipe(self, why: str) -> None:
        if self.db_path.exists() or self.state_path.exists() or self.outbox_dir.exists():
            self.o.echo(why)
        for path in (self.db_path, self.state_path, Path(str(self.db_path) + "-wal"),
                     Path(str(self.db_path) + "-shm"), Path(str(self.db_path) + "-journal")):
            path.unlink(missing_ok=True)
        shutil.rmtree(self.outbox_dir, ignore_errors=True)

    def _new_state(self) -> dict[str, Any]:
        end = (self.o.end or SystemClock().now()).replace(minute=0, second=0, microsecond=0)
        return {"start": (end - timedelta(days=self.o.days)).isoformat(), "end": end.isoformat(),
                "customers": self.o.customers, "orders": self.o.orders, "amazon_orders": self.o.amazon_orders,
                "seed": self.o.seed, "amazon_seed": self.o.amazon_seed, "password": secrets.token_urlsafe(12),
                "journal": [], "completed": False}

    def _save_state(self) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state), encoding="utf-8")
        os.replace(tmp, self.state_path)

    # -- sandboxes and app -------------------------------------------------------------------------------------
    def _start_sandboxes(self, state: dict[str, Any], start: datetime, end: datetime) -> None:

        echo = self.o.echo
        self.lwa_id = os.environ.get("AFTERCARE_LWA_CLIENT_ID") or DEMO_LWA_CLIENT_ID
        self.lwa_secret = os.environ.get("AFTERCARE_LWA_CLIENT_SECRET") or DEMO_LWA_CLIENT_SECRET
        t0 = time.perf_counter()
        # Amazon is seeded at the end and hides what lies after the clock; the clock then goes back to the start.
        self.amazon = AmazonSandbox(seed=state["amazon_seed"], orders=state["amazon_orders"], clock=self.clock,
                                    rate_scale=50, client_id=self.lwa_id, client_secret=self.lwa_secret)
        self._serve(self.amazon.wsgi_app, lambda server: setattr(self.amazon, "_server", server))
        self.clock.set(start)
        self.shop = DEFAULT_SHOP
        self.shopify = ShopifySandbox(seed=state["seed"], customers=state["customers"], orders=state["orders"],
                                      clock=self.clock, shops=[self.shop], webhook_sleep=lambda _s: None)
        frame = AdminFrame(self.shopify.wsgi_app, self.shopify, lambda: self.app_url, self.shop)
        self._serve(frame, lambda server: setattr(self.shopify, "server", server))
        self.shopify_url = self.shopify.url
        store = self.shopify.store
        _give_birthdays(store, start)
        # Judge.me knows the store's products and, for verified reviews, its orders of the last 60 days.
        recent = [o for o in store.orders if o.created_at >= start - timedelta(days=60) and o.cancelled_at is None]
        self.judgeme = JudgemeSandbox(
            seed=state["seed"], shops={self.shop: DEMO_TOKEN}, clock=self.clock, history_days=60,
            products=[{"id": p.id, "handle": p.handle, "title": p.title} for p in store.products],
            orders=[{"id": o.id, "email": o.email, "customer_id": o.customer_id,
                     "name": _name(store.customers_by_id[o.customer_id]),
                     "product_ids": sorted({li.product_id for li in o.line_items})} for o in recent],
            reviews_per_product=4)
        self.judgeme.start()
        self.stoppers.append(self.judgeme.stop)
        self.judgeme_token = DEMO_TOKEN
        self.smtp = SmtpSandbox(outbox_dir=self.outbox_dir, clock=self.clock).start()
        self.stoppers.append(self.smtp.stop)
        echo(f"[1/6] Sandboxes up in {time.perf_counter() - t0:.1f} s: Shopify {self.shopify_url} "
             f"({len(store.customers):,} customers, {len(store.orders):,} orders), Amazon {self.amazon.url} "
             f"({len(self.amazon.orders):,} orders), Judge.me {self.judgeme.url}, SMTP 127.0.0.1:{self.smtp.port}")

    def _serve(self, wsgi: Any, bind: Callable[[Any], None] | None = None, port: int = 0) -> Any:

        server = ServerThread(wsgi, port=port)
        if bind is not None:
            bind(server)
        server.start()
        self.stoppers.append(server.stop)
        return server

    def demo_config(self, app_url: str) -> Config:
        """Return the app's configuration: app.toml and AFTERCARE_* settings, then the demo's sandbox wiring.

        Secret variables of the environment are ignored: the demo always uses its own development secrets
        from the instance folder (so a stray production key can never touch demo data).
        """
        environ = {k: v for k, v in os.environ.items()
                   if k not in SECRET_VARIABLES.values() and k not in ("AFTERCARE_DATABASE_URL", "AFTERCARE_ENV")}
        override = {
            "app": {"development": True, "instance_path": str(self.instance), "base_url": app_url,
                    "log_level": os.environ.get("AFTERCARE_APP__LOG_LEVEL", "WARNING")},
            "shopify": {"admin_base_url": self.shopify_url, "application_url": app_url,
                        "app_bridge_url": f"{self.shopify_url}/__sandbox/app-bridge.js"},
            "amazon": {"endpoint": self.amazon.url, "lwa_token_url": self.amazon.lwa_token_url,
                       "report_poll_seconds": 5.0},
            "judgeme": {"base_url": self.judgeme.url},
            "mail": {"from_email": "hello@aftercare-demo.example", "from_name": "Aftercare Demo Store"},
            "database_url": f"sqlite:///{self.db_path}",
            "secrets": {"smtp_url": f"smtp://127.0.0.1:{self.smtp.port}", "lwa_client_id": self.lwa_id,
                        "lwa_client_secret": self.lwa_secret},
        }
        return load_config(override, environ=environ)

    def _start_app(self, state: dict[str, Any]) -> None:

        holder = _LateApp()
        server = self._serve(holder, port=self.o.port)
        self.app_url = server.url
        self.config = self.demo_config(self.app_url)
        upgrade(self.config.database_url)
        self.app = create_app(self.config, clock=self.clock)
        outbox.init_app(self.app, self.outbox_dir)
        # One line per HTTP request between the parts would drown the progress lines.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        holder.app = self.app
        database = self.app.extensions["aftercare.db"]
        self.stoppers.append(database.dispose)
        self.client_id = self.config.secrets.shopify_api_key
        self.shopify.register_app(self.client_id, self.config.secrets.shopify_api_secret,
                                  self.config.get("shopify.scopes"), webhook_url=self.app_url + "/webhooks")
        # During the simulation a wait moves the shared clock (no real sleeping); while serving it is real.
        self.sim_ctx = JobContext.from_app(self.app, sleep=lambda s: self.clock.advance(seconds=s))
        self.live_ctx = JobContext.from_app(self.app)

    # -- first run -------------------------------------------------------------------------------------------------
    def _first_run(self, state: dict[str, Any], start: datetime, end: datetime) -> dict[str, int]:
        echo = self.o.echo
        t0 = time.perf_counter()
        self.shop_store_id = self._install()
        self._merchant_setup(state)
        self.amazon_store_id = self._connect_amazon()
        echo(f"[2/6] Installed into {self.shop} through token exchange (store {self.shop_store_id}); Amazon "
             f"seller {self.seller.seller_id} connected (store {self.amazon_store_id}) in "
             f"{time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        backfill = [run_job(self.sim_ctx, spec) for spec in _specs(SYNC_TARGETS)]
        failed = {r.job: r.failures for r in backfill if r.failures}
        if failed:
            raise DemoError(f"backfill failed: {failed}")
        self._mark_consumables()
        self._write_guides()
        with self.app.extensions["aftercare.db"].session() as session:
            orders = dict(session.execute(select(Store.platform, func.count()).select_from(Store)
                                          .join(Order, Order.store_id == Store.id).group_by(Store.platform)).all())
        echo(f"[3/6] Backfilled {orders.get('shopify', 0):,} Shopify and {orders.get('amazon', 0):,} Amazon "
             f"orders in {time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        world = ShopperWorld(self.shopify, self.judgeme, self.shop, state["seed"], start, end)
        counts = self._simulate(world, start, end)
        state["journal"] = world.journal
        state["completed"] = True
        with self.app.extensions["aftercare.db"].session() as session:

            sync.mark_sync_success(session, self.shop_store_id, SIMULATED_STREAM, cursor=end.isoformat(), now=end)
        self._save_state()
        echo(f"[5/6] Simulated {self.o.days} days in {time.perf_counter() - t0:.1f} s: "
             + ", ".join(f"{v:,} {k}" for k, v in counts.items()))
        return counts

    def _session_token(self) -> str:

        return mint_session_token(self.shop, self.client_id, self.config.secrets.shopify_api_secret,
                                  self.clock.now())

    def _install(self) -> int:
        """Install through the app's real embedded install: a sandbox session token at /auth/token-exchange."""
        answer = requests.post(f"{self.app_url}/auth/token-exchange", timeout=REQUEST_TIMEOUT,
                               headers={"Authorization": f"Bearer {self._session_token()}"})
        if answer.status_code != 200:
            raise DemoError(f"install through token exchange failed: {answer.status_code} {answer.text[:200]}")
        return int(answer.json()["store_id"])

    def _merchant_setup(self, state: dict[str, Any]) -> None:
        """What the merchant does once: sender identity, Judge.me connection, a standalone login."""

        vault = self.app.extensions["aftercare.vault"]
        with self.app.extensions["aftercare.db"].session() as session:
            store = session.get(Store, self.shop_store_id)
            merchant = session.get(Merchant, store.merchant_id)
            merchant.sender_email = "hello@aftercare-demo.example"
            merchant.sender_name = store.name
            merchant.alert_email = "owner@aftercare-demo.example"
            merchant.cac = 28.0
            # The store sells coffee and care products of $25-50 an order: at the default $500 a year one customer
            # in a hundred is VIP, so this merchant's VIP rule is $250 a year (and 4 orders, the default).
            merchant.settings = {**(merchant.settings or {}), "segments": {"vip_min_spent_12m": 250.0}}
            set_credential(store, vault, "review_app_token_enc", self.judgeme_token)
            # The growth journey: birthdays from the customer metafield the store keeps them in, and win-back
            # switched on with its paced backfill of customers who were already dormant (three a day).
            flow_settings.update(session, self.config, store.id, "birthday", {"metafield": BIRTHDAY_METAFIELD})
            flow_settings.update(session, self.config, store.id, "winback",
                                 {"backfill_enabled": True, "backfill_daily_cap": 3})
            # The shopping calendar's autumn events go to every customer who still shops here, not only the
            # growth segment (few big first orders in a coffee store).
            for key in DEMO_CALENDAR_EVENTS:
                save_event(session, store.id, key, segments=["growth", "vip", "active"])
            create_admin_user(session, DEMO_EMAIL, state["password"], merchant_id=merchant.id)
            self.merchant_id = merchant.id

    def _connect_amazon(self) -> int:
        """Connect the sandbox's cross-border seller with the admin's connect function (checks the token)."""

        self.seller = self.amazon.seller(0)
        countries = [country_of(m) or "" for m in self.seller.marketplace_ids]
        region = region_of(countries[0])
        countries = [c for c in countries if region_of(c) == region]
        token = self.amazon.issue_refresh_token(self.seller.seller_id)
        with self.app.app_context(), self.app.extensions["aftercare.db"].session() as session:
            store = connect_amazon(session, self.merchant_id, self.seller.seller_id, region, countries, token,
                                   f"Amazon {self.seller.name}")
            return store.id

    def _mark_consumables(self) -> None:
        """The merchant's replenishment settings: which products are consumables and their days of supply."""
        supply = {str(p.id): p.days_of_supply for p in self.shopify.store.products if p.days_of_supply}
        with self.app.extensions["aftercare.db"].session() as session:
            for product in session.scalars(select(Product).where(Product.store_id == self.shop_store_id)):
                days = supply.get(product.external_id.rsplit("/", 1)[-1])
                if days:
                    product.consumable, product.days_of_supply = True, days

    def _write_guides(self) -> None:
        """The merchant's usage guides: two shipped starters pointed at the shop's product types and switched on."""
        with self.app.extensions["aftercare.db"].session() as session:
            for starter, product_type in DEMO_GUIDES:
                block = new_from_starter(session, self.shop_store_id, starter)
                block.target, block.enabled = product_type, True

    # -- the simulation -----------------------------------------------------------------------------------------
    def _simulate(self, world: ShopperWorld, start: datetime, end: datetime) -> dict[str, int]:
        echo = self.o.echo
        ctx = self.sim_ctx
        database = self.app.extensions["aftercare.db"]
        rng = random.Random(self.state["seed"] + 99)
        service_rng = random.Random(self.state["seed"] + 199)
        specs = list(JOBS)
        last_run: dict[str, datetime] = {}
        reactions: list[tuple[datetime, int, str, dict[str, Any]]] = []
        seen_mail = 0
        seq = 0
        failures = 0
        customers_by_email = {c.email.lower(): c.id for c in self.shopify.store.customers}
        total_hours = int((end - start).total_seconds() // 3600)
        next_report = 0.0
        pending_events = False
        for hour in range(total_hours + 1):
            t = start + timedelta(hours=hour)
            self.clock.set(max(t, self.clock.now()))
            now = self.clock.now()
            events = world.due(now)
            while reactions and reactions[0][0] <= now:
                _at, _n, kind, data = heapq.heappop(reactions)
                self._react(world, kind, data, now)
            pending_events = pending_events or bool(events)
            for spec in specs:
                interval = timedelta(seconds=max(spec.seconds, SIM_FLOOR.get(spec.name, DEFAULT_FLOOR)))
                if spec.name in last_run and now - last_run[spec.name] < interval:
                    continue
                if spec.name == "webhooks" and not pending_events:
                    continue
                if spec.name == "dispatch" and not self._due_messages(now):
                    continue
                last_run[spec.name] = now
                pending_events = pending_events and spec.name != "webhooks"
                result = run_job(ctx, spec)
                failures += len(result.failures)
                self.job_seconds[spec.name] = self.job_seconds.get(spec.name, 0.0) + result.seconds
            if hour % 24 == 0:
                self._merchant_resolves_tickets(now)
            # Customers read their new emails: some answer the survey, some follow the reorder link.
            received = self.smtp.messages
            for message in received[seen_mail:]:
                for kind, data in _reactions_to(message, rng, customers_by_email, service_rng):
                    seq += 1
                    heapq.heappush(reactions, (now + timedelta(hours=rng.uniform(2, 30)), seq, kind, data))
            seen_mail = len(received)
            done = hour / total_hours
            if done >= next_report:
                with database.session() as session:
                    sent = session.scalar(select(func.count()).select_from(Message)
                                          .where(Message.status == "sent")) or 0
                echo(f"[4/6] Simulating: day {hour // 24:>2}/{self.o.days} ({done:4.0%}) — {sent:,} messages "
                     f"sent, {world.counts['orders'] + world.counts['reorders']:,} new orders")
                next_report += 0.1
        self.clock.set(max(end, self.clock.now()))
        for spec in _specs(("jobs.webhooks:process_pending", *SYNC_TARGETS, "jobs.analytics:snapshot_metrics")):
            run_job(ctx, spec)
        with database.session() as session:
            updates = session.scalar(select(func.count()).select_from(Message).where(
                Message.flow == "delivery_update", Message.status == "sent")) or 0
            # What stall detection found (plugin.delivery_stalls) and the tickets it opened for the merchant.
            stalls = session.scalar(select(func.count()).select_from(DeliveryProblem)) or 0
            stall_tickets = session.scalar(select(func.count(DeliveryProblem.ticket_id))) or 0
        return {**world.counts, "delivery updates": updates, "delivery stalls": stalls, "stall tickets": stall_tickets,
                **self._journey_counts(), "job failures": failures}

    def _journey_counts(self) -> dict[str, int]:
        """Count the emails each journey step sent (service, then growth) and the VIP tags in Shopify, in one read."""
        with self.app.extensions["aftercare.db"].session() as session:
            sent = dict(((flow, step), n) for flow, step, n in session.execute(
                select(Message.flow, Message.step, func.count()).where(Message.status == "sent")
                .group_by(Message.flow, Message.step)))
            tagged = session.scalar(select(func.count()).select_from(VipMember).where(
                VipMember.store_id == self.shop_store_id, VipMember.tagged.is_(True))) or 0
        return {**{label: int(sent.get(key, 0)) for key, label in JOURNEY_STEPS.items()}, "VIP tags": int(tagged)}

    def _due_messages(self, now: datetime) -> bool:
        with self.app.extensions["aftercare.db"].session() as session:
            return session.scalar(select(Message.id).where(Message.status == "scheduled",
                                                           Message.scheduled_for <= now).limit(1)) is not None

    def _merchant_resolves_tickets(self, now: datetime) -> None:
        """The merchant deals with each complaint two days after it opens (follow-ups then go out)."""
        with self.app.extensions["aftercare.db"].session() as session:
            for ticket in session.scalars(select(Ticket).where(Ticket.status == "open",
                                                               Ticket.opened_at <= now - TICKET_RESOLVE_AFTER)):
                resolve_ticket(session, ticket.id, suggested_resolution(ticket), now,
                               remedy="replacement" if ticket.severity == 1 else None)

    def _react(self, world: ShopperWorld, kind: str, data: dict[str, Any], now: datetime) -> None:
        """Follow a link from an email through the app's public routes, as the customer would."""
        answer = requests.get(data["url"], timeout=REQUEST_TIMEOUT, allow_redirects=False)
        if kind == "reorder" and answer.status_code == 302:
            cart = urlsplit(answer.headers["Location"]).path.rsplit("/", 1)[-1]
            lines = [(int(v), int(q)) for v, q in (item.split(":") for item in cart.split(",") if ":" in item)]
            if lines and data.get("customer"):
                world.reorder_from_link(data["customer"], lines, now + timedelta(minutes=20))

    # -- later runs ----------------------------------------------------------------------------------------------
    def _resume(self, state: dict[str, Any], end: datetime) -> dict[str, int]:
        """Rebuild the sandboxes from the journal, renew the stored credentials quietly, reuse the data."""

        t0 = time.perf_counter()
        count = replay(self.shopify, self.judgeme, self.shop, state["journal"], self.clock.set)
        self.clock.set(end)
        database = self.app.extensions["aftercare.db"]
        # The re-created sandboxes do not know the tokens of the previous run: exchange a new session token.
        grant = exchange_session_token(self.config, self.clock, self.shop, self._session_token(),
                                       expiring=bool(self.config.get("shopify.expiring_offline_tokens")))
        with database.session() as session:
            store = install_from_grant(session, self.config, self.clock, self.app.extensions["aftercare.vault"],
                                       self.shop, grant)
            self.shop_store_id, self.merchant_id = store.id, store.merchant_id
            done = session.scalar(select(SyncState.cursor).where(SyncState.store_id == store.id,
                                                                 SyncState.stream == SIMULATED_STREAM))
        if not done:
            raise DemoError("the demo database has no finished simulation; run `aftercare demo --fresh`")
        self.amazon_store_id = self._connect_amazon()
        self.o.echo(f"[2/6] Sandboxes rebuilt ({count:,} journalled events) and credentials renewed in "
                    f"{time.perf_counter() - t0:.1f} s; install, backfill and simulation skipped")
        return {}


class DemoError(RuntimeError):
    """The demo could not be brought up; the message says which step failed."""


def _specs(targets: tuple[str, ...]) -> list[JobSpec]:
    """Return the declared jobs that run one of ``targets`` (job names may change; targets are the code)."""
    return [spec for spec in JOBS if spec.target in targets]


def _name(person: Any) -> str:
    return f"{person.first_name} {person.last_name[:1]}."


LINK = re.compile(r'href="(https?://[^"]+/(s|r|c)/([^"/?#]+))"')
CANCEL_ANSWER_SHARE = 0.7


def _reactions_to(message: Any, rng: random.Random, customers: dict[str, int],
                  service_rng: random.Random) -> list[tuple[str, dict[str, Any]]]:
    """Decide what a customer does with one email: answer the survey with some score, or reorder."""
    part = message.message.get_body(preferencelist=("html",))
    if part is None:
        return []
    body = part.get_content()
    to = message.envelope_to[0].lower() if message.envelope_to else ""
    scores = [(m.group(1).replace("&amp;", "&"), m.group(3)) for m in LINK.finditer(body) if m.group(2) == "s"]
    reorders = [m.group(1).replace("&amp;", "&") for m in LINK.finditer(body) if m.group(2) == "r"]
    reasons = [m.group(1).replace("&amp;", "&") for m in LINK.finditer(body) if m.group(2) == "c"]
    out: list[tuple[str, dict[str, Any]]] = []
    # Asked why they cancelled, most answer in one click (some "delivery too slow": a ticket opens).
    if reasons and service_rng.random() < CANCEL_ANSWER_SHARE:
        out.append(("cancel_reason", {"url": service_rng.choice(reasons)}))
    if scores and rng.random() < SURVEY_ANSWER_SHARE:
        wanted = rng.choice(SURVEY_SCORES)
        # Score links are listed from the lowest score up; pick the one for the chosen score when present.
        url = scores[min(wanted, len(scores) - 1)][0] if len(scores) >= 11 else rng.choice(scores)[0]
        out.append(("survey", {"url": url}))
    if reorders and rng.random() < REORDER_CLICK_SHARE:
        out.append(("reorder", {"url": reorders[0], "customer": customers.get(to)}))
    return out


BIRTHDAY_METAFIELD = "facts.birth_date"
# The summary line's label of each journey step's sent emails: the service journey, then the growth journey.
JOURNEY_STEPS = {("first_order", "main"): "welcomes", ("cancellation", "ask"): "cancellation questions",
                 ("cancellation", "declined"): "declined notices", ("ticket_followup", "followup"): "follow-ups",
                 ("ticket_followup", "comeback"): "come-back offers", ("ticket_alert", "urgent"): "urgent alerts",
                 ("usage_guide", "main"): "usage guides", ("winback", "main"): "win-backs",
                 ("winback", "reminder"): "win-back reminders", ("birthday", "main"): "birthday emails",
                 ("vip", "main"): "VIP welcomes", ("shopping_calendar", "main"): "shopping-calendar emails"}
DEMO_CALENDAR_EVENTS = ("diwali", "singles_day", "shichi_go_san", "black_friday", "cyber_monday", "christmas")


def _give_birthdays(store: Any, start: datetime) -> None:
    """Give every third sandbox customer a birthday in the ``facts.birth_date`` date metafield, spread over the year.

    Spread from the simulation's start (every 37th day of the year, so ones fall inside any 45 simulated days);
    the same seed gives the same birthdays on a reused instance.
    """
    first = start.date()
    for n, customer in enumerate(store.customers):
        if n % 3 == 1:
            day = first + timedelta(days=(n * 37) % 365)
            customer.metafields[BIRTHDAY_METAFIELD] = ("date", f"{1970 + n % 30}-{day.month:02d}-{day.day:02d}")
