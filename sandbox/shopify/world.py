"""The Shopify sandbox's world: seeded shops, apps and tokens, webhooks, and the control API for tests.

Control methods change the store the way a merchant or customer would (consent change, new order,
fulfilment, delivery, cancellation, refund); each bumps ``updatedAt`` and fires the webhooks Shopify
would send, so a change reaches the app both by webhook and by incremental sync. Deletions (order,
product, customer) reach it only by webhook: the deleted object simply vanishes from GraphQL.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from base.clock import Clock, SystemClock
from sandbox.shopify.auth import AppRecord, TokenStore
from sandbox.shopify.cost import LeakyBucket
from sandbox.shopify.models import BulkOperation, Fulfillment, FulfillmentEvent, LineItem, Order, Refund, Store
from sandbox.shopify.payloads import PayloadBuilder
from sandbox.shopify.seed import ShopSpec, generate_store
from sandbox.shopify.state import API_VERSION, DEFAULT_SHOP, ShopState
from sandbox.shopify.webhooks import COMPLIANCE_TOPICS, Delivery, WebhookSender

# Shopify's FulfillmentEventStatus (https://shopify.dev/docs/api/admin-graphql/2025-01/enums/FulfillmentEventStatus).
EVENT_STATUSES = ("LABEL_PURCHASED", "LABEL_PRINTED", "READY_FOR_PICKUP", "CONFIRMED", "IN_TRANSIT",
                  "OUT_FOR_DELIVERY", "ATTEMPTED_DELIVERY", "DELAYED", "DELIVERED", "FAILURE")


class ShopWorld:
    """The seeded shops, the registered apps and their tokens, webhooks, and the changes a merchant makes.

    Everything of the sandbox but its serving: ``ShopifySandbox`` (``assembly.py``) adds the GraphQL schema,
    the bulk manager and the HTTP application on top.
    """

    def __init__(self, seed: int = 42, customers: int = 2000, orders: int = 10000, clock: Clock | None = None,
                 shops: Sequence[str | ShopSpec] | None = None, restore_rate: float = 100.0,
                 maximum_available: float = 2000.0, max_query_cost: int = 1000,
                 webhook_sleep: Callable[[float], None] | None = None, webhook_timeout: float = 5.0,
                 strict_refresh_rotation: bool = False, async_webhooks: bool = False):
        self.clock: Clock = clock or SystemClock()
        # False: a used refresh token stays valid until its replacement is used (Shopify since 2026);
        # True: it is invalid as soon as it has been used once.
        self.strict_refresh_rotation = strict_refresh_rotation
        # Tests want deliveries done when a control call returns; the demo sends from a thread instead so a
        # single-threaded app polling the sandbox can never wait on its own webhook.
        self.async_webhooks = async_webhooks
        self.seed = seed
        self.max_query_cost = max_query_cost
        self.lock = threading.RLock()
        now = self.clock.now()
        specs = [s if isinstance(s, ShopSpec) else ShopSpec(s) for s in (shops or [DEFAULT_SHOP])]
        self.shops: dict[str, ShopState] = {}
        for index, spec in enumerate(specs):
            store = generate_store(spec, seed, customers, orders, now, shop_index=index)
            self.shops[spec.domain] = ShopState(store, self.clock, maximum_available, restore_rate)
        self.apps: dict[str, AppRecord] = {}
        self.tokens = TokenStore()
        sender_kwargs: dict[str, Any] = {"timeout": webhook_timeout}
        if webhook_sleep is not None:
            sender_kwargs["sleep"] = webhook_sleep
        self.webhooks = WebhookSender(**sender_kwargs)

    # -- lookups ---------------------------------------------------------------------------------------
    def shop_state(self, shop: str | None = None) -> ShopState:
        """Return a shop's state; ``None`` means the single (first) seeded shop."""
        if shop is None:
            return next(iter(self.shops.values()))
        try:
            return self.shops[shop]
        except KeyError:
            raise KeyError(f"unknown shop {shop!r}; seeded: {sorted(self.shops)}") from None

    @property
    def store(self) -> Store:
        """Return the first shop's store (``store.customers``, ``store.products``, ``store.orders``)."""
        return self.shop_state().store

    def stores(self) -> dict[str, Store]:
        """Return every shop's store by domain."""
        return {domain: st.store for domain, st in self.shops.items()}

    @property
    def shop_domains(self) -> list[str]:
        """Return the seeded shop domains."""
        return list(self.shops)

    # -- apps and tokens -------------------------------------------------------------------------------
    def register_app(self, client_id: str, client_secret: str, scopes: Iterable[str],
                     protected_customer_data: bool = True, webhook_url: str | None = None,
                     webhook_topics: Iterable[str] | None = None, api_version: str = API_VERSION) -> AppRecord:
        """Register (or replace) an app with its scopes, protected-data access and webhook URL."""
        if isinstance(scopes, str):
            scopes = [s.strip() for s in scopes.split(",") if s.strip()]
        app = AppRecord(client_id, client_secret, tuple(scopes), protected_customer_data, webhook_url,
                        tuple(webhook_topics) if webhook_topics is not None else None, api_version)
        with self.lock:
            self.apps[client_id] = app
        return app

    def app(self, client_id: str) -> AppRecord:
        """Return a registered app."""
        return self.apps[client_id]

    def install(self, client_id: str, shop: str | None = None, expiring: bool = False) -> dict[str, Any]:
        """Install an app on a shop and return the token response Shopify would send."""
        state = self.shop_state(shop)
        return self.issue_token_response(client_id, state.store.shop.domain, expiring=expiring)

    def authorize(self, client_id: str, shop: str | None = None) -> str:
        """Return an authorization code as if the merchant approved the app (for the code grant)."""
        return self.tokens.new_code(client_id, self.shop_state(shop).store.shop.domain)

    def issue_token_response(self, client_id: str, shop: str, mode: str = "offline", expiring: bool = False,
                             user_id: int | None = None, predecessor: Any = None) -> dict[str, Any]:
        """Issue tokens, mark the app installed, and return the access_token response body."""
        app = self.apps[client_id]
        now = self.clock.now()
        access, refresh = self.tokens.issue(client_id, shop, now, mode, expiring, user_id, predecessor)
        self.shops[shop].installed.add(client_id)
        body: dict[str, Any] = {"access_token": access.token, "scope": ",".join(app.scopes)}
        if access.expires_at is not None:
            body["expires_in"] = int((access.expires_at - now).total_seconds())
        if refresh is not None:
            body["refresh_token"] = refresh.token
            body["refresh_token_expires_in"] = int((refresh.expires_at - now).total_seconds())
        if mode == "online":
            body["associated_user_scope"] = ",".join(app.scopes)
            body["associated_user"] = {"id": user_id or 1, "first_name": "Sandbox", "last_name": "Owner",
                                       "email": "owner@example.com", "email_verified": True,
                                       "account_owner": True, "locale": "en", "collaborator": False}
        return body

    def revoke(self, client_id: str, shop: str | None = None, notify: bool = True) -> int:
        """Uninstall: revoke the app's tokens on the shop and send ``app/uninstalled``."""
        state = self.shop_state(shop)
        domain = state.store.shop.domain
        count = self.tokens.revoke(client_id, domain)
        was_installed = client_id in state.installed
        state.installed.discard(client_id)
        for sub_id in [s.id for s in state.subscriptions.values() if s.client_id == client_id]:
            del state.subscriptions[sub_id]
        if notify and was_installed:
            app = self.apps[client_id]
            self._deliver(state, app, "app/uninstalled", PayloadBuilder(state.store, True).shop_resource(),
                          app.webhook_url)
        return count

    uninstall = revoke

    def expire_token(self, token: str) -> None:
        """Make an access token expired now."""
        self.tokens.expire(token)

    def bucket(self, client_id: str, shop: str | None = None) -> LeakyBucket:
        """Return an app's cost bucket on a shop."""
        return self.shop_state(shop).bucket(client_id)

    # -- webhooks --------------------------------------------------------------------------------------
    @property
    def deliveries(self) -> list[Delivery]:
        """Return every webhook delivery made so far."""
        return list(self.webhooks.log)

    def _deliver(self, state: ShopState, app: AppRecord, topic: str, payload: Any, url: str | None) -> None:
        if not url:
            return
        delivery = self.webhooks.build(url, topic, state.store.shop.domain, payload, app.client_secret,
                                       app.api_version, self.clock.now())
        if self.async_webhooks:
            threading.Thread(target=self.webhooks.send, args=(delivery,), name=f"webhook:{topic}",
                             daemon=True).start()
        else:
            self.webhooks.send(delivery)

    def emit(self, state: ShopState, topic: str, build: Callable[[PayloadBuilder], Any]) -> None:
        """Send ``topic`` to every installed app subscribed to it (app config or GraphQL subscription)."""
        state.touch()
        for client_id in sorted(state.installed):
            app = self.apps[client_id]
            payload = build(PayloadBuilder(state.store, app.protected_customer_data, app.api_version))
            urls: list[str] = []
            if app.webhook_url and (topic in COMPLIANCE_TOPICS or app.webhook_topics is None
                                    or topic in app.webhook_topics):
                urls.append(app.webhook_url)
            urls += [s.callback_url for s in state.subscriptions.values()
                     if s.client_id == client_id and s.topic == topic and s.callback_url not in urls]
            for url in urls:
                self._deliver(state, app, topic, payload, url)

    def notify_bulk_finished(self, state: ShopState, app: AppRecord, op: BulkOperation) -> None:
        """Send ``bulk_operations/finish`` to the app that ran the operation."""
        if app.client_id not in state.installed:
            return
        payload = PayloadBuilder(state.store, app.protected_customer_data).bulk_finish(op)
        urls = [s.callback_url for s in state.subscriptions.values()
                if s.client_id == app.client_id and s.topic == "bulk_operations/finish"]
        if not urls and app.webhook_url and (app.webhook_topics is None
                                             or "bulk_operations/finish" in app.webhook_topics):
            urls = [app.webhook_url]
        for url in urls:
            self._deliver(state, app, "bulk_operations/finish", payload, url)

    # -- data changes (control API) --------------------------------------------------------------------
    def _now(self) -> datetime:
        return self.clock.now().replace(microsecond=0)

    def update_customer_consent(self, customer_id: int, state_name: str, opt_in_level: str = "SINGLE_OPT_IN",
                                shop: str | None = None) -> None:
        """Change a customer's e-mail marketing consent (e.g. SUBSCRIBED/UNSUBSCRIBED).

        Fires ``customers_email_marketing_consent/update`` (since API 2025-01 the only webhook that carries
        e-mail consent) and ``customers/update`` (the customer's ``updated_at`` moved; its body has no consent).
        """
        state = self.shop_state(shop)
        now = self._now()
        with self.lock:
            customer = state.store.customers_by_id[customer_id]
            customer.marketing_state = state_name
            customer.opt_in_level = opt_in_level
            customer.consent_updated_at = now
            customer.updated_at = now
        self.emit(state, "customers_email_marketing_consent/update", lambda b: b.email_marketing_consent(customer))
        self.emit(state, "customers/update", lambda b: b.customer(customer))

    def add_order(self, customer_id: int, lines: Sequence[tuple[int, int]], shop: str | None = None,
                  created_at: datetime | None = None, presentment_currency: str | None = None,
                  presentment_rate: Decimal | str | None = None) -> Order:
        """Create an order for a customer from (variant id, quantity) pairs; fires ``orders/create``.

        ``presentment_currency``/``presentment_rate``: the buyer paid in another currency than the shop's, one
        shop unit being worth ``presentment_rate`` of it (e.g. "EUR", "0.85" at a USD shop).
        """
        state = self.shop_state(shop)
        store = state.store
        when = (created_at or self._now()).replace(microsecond=0)
        if (presentment_currency is None) != (presentment_rate is None):
            raise ValueError("a presentment currency needs its rate, and a rate its currency")
        with self.lock:
            customer = store.customers_by_id[customer_id]
            number = max((o.number for o in store.orders), default=1000) + 1
            order = Order(id=store.new_id(), number=number, customer_id=customer.id, email=customer.email,
                          customer_locale=customer.locale, currency=store.shop.currency, created_at=when,
                          processed_at=when, updated_at=when, line_items=[], phone=customer.phone)
            if presentment_currency is not None and presentment_currency != store.shop.currency:
                order.presentment_currency = presentment_currency
                order.presentment_rate = Decimal(str(presentment_rate))
            for variant_id, qty in lines:
                v = store.variants_by_id[variant_id]
                p = store.products_by_id[v.product_id]
                order.line_items.append(LineItem(store.new_id(), p.id, v.id, v.sku, p.title, v.title, p.vendor, qty,
                                                 v.price_cents, order.presentment(v.price_cents)))
            store.add_order(order)
            customer.updated_at = max(customer.updated_at, when)
        self.emit(state, "orders/create", lambda b: b.order(order))
        return order

    def _order(self, state: ShopState, order_id: int) -> Order:
        return state.store.orders_by_id[order_id]

    def fulfil_order(self, order_id: int, estimated_delivery_at: datetime | None = None,
                     shop: str | None = None, quantity: int | None = None) -> Fulfillment:
        """Ship the order's unshipped units in one parcel (or only ``quantity`` of them); fires
        ``orders/fulfilled`` once every unit is shipped (``orders/partially_fulfilled`` is not sent) and
        ``orders/updated``."""
        state = self.shop_state(shop)
        now = self._now()
        with self.lock:
            order = self._order(state, order_id)
            left = sum(li.quantity for li in order.line_items) - sum(
                f.quantity for f in order.fulfillments if f.status == "SUCCESS")
            count = left if quantity is None else quantity
            if not 0 < count <= left:
                raise ValueError(f"order {order_id} has {left} unshipped units, cannot ship {count}")
            ful = Fulfillment(state.store.new_id(), "SUCCESS", now, now, now,
                              estimated_delivery_at.replace(microsecond=0) if estimated_delivery_at else
                              now + timedelta(days=4), None, count)
            ful.tracking_company = "UPS"
            ful.tracking_number = f"1Z999AA1{ful.id:010d}"
            ful.tracking_url = f"https://www.ups.com/track?tracknum={ful.tracking_number}"
            order.fulfillments.append(ful)
            ful.name = f"{order.name}.{len(order.fulfillments)}"
            order.updated_at = now
        self.emit(state, "fulfillments/create", lambda b: b.fulfillment(order, ful))
        if order.fulfillment_status == "FULFILLED":
            self.emit(state, "orders/fulfilled", lambda b: b.order(order))
        self.emit(state, "orders/updated", lambda b: b.order(order))
        return ful

    def _fulfillment(self, order: Order, fulfillment_id: int | None) -> Fulfillment:
        if not order.fulfillments:
            raise ValueError(f"order {order.id} has no fulfilment")
        if fulfillment_id is None:
            return order.fulfillments[-1]
        for fulfillment in order.fulfillments:
            if fulfillment.id == fulfillment_id:
                return fulfillment
        raise KeyError(f"order {order.id} has no fulfilment {fulfillment_id}")

    def deliver_order(self, order_id: int, delivered_at: datetime | None = None,
                      shop: str | None = None, fulfillment_id: int | None = None) -> Fulfillment:
        """Mark a fulfilment (the latest by default) delivered; fires ``fulfillment_events/create`` (the carrier's
        delivery event), ``fulfillments/update`` and ``orders/updated``."""
        return self.add_fulfillment_event(order_id, "DELIVERED", delivered_at, shop=shop,
                                          fulfillment_id=fulfillment_id)[0]

    def add_fulfillment_event(self, order_id: int, status: str, happened_at: datetime | None = None, *,
                              shop: str | None = None, fulfillment_id: int | None = None, city: str | None = None,
                              country: str | None = None, message: str | None = None,
                              estimated_delivery_at: datetime | None = None) -> tuple[Fulfillment, FulfillmentEvent]:
        """Record a carrier milestone of a fulfilment (the latest by default), as a carrier integration does
        through ``fulfillmentEventCreate``; fires ``fulfillment_events/create`` and ``fulfillments/update``,
        and ``orders/updated`` when the milestone is the delivery."""
        if status not in EVENT_STATUSES:
            raise ValueError(f"unknown FulfillmentEventStatus {status!r}")
        state = self.shop_state(shop)
        now = self._now()
        with self.lock:
            order = self._order(state, order_id)
            ful = self._fulfillment(order, fulfillment_id)
            happened = (happened_at or now).replace(microsecond=0)
            event = FulfillmentEvent(state.store.new_id(), status, happened, now, estimated_delivery_at, city,
                                     None, country, message)
            ful.events.append(event)
            if estimated_delivery_at is not None:
                ful.estimated_delivery_at = estimated_delivery_at
            if status == "IN_TRANSIT" and ful.in_transit_at is None:
                ful.in_transit_at = happened
            if status == "DELIVERED":
                ful.delivered_at = happened
            ful.updated_at = now
            order.updated_at = now
        self.emit(state, "fulfillment_events/create", lambda b: b.fulfillment_event(order, ful, event))
        self.emit(state, "fulfillments/update", lambda b: b.fulfillment(order, ful))
        if status == "DELIVERED":
            self.emit(state, "orders/updated", lambda b: b.order(order))
        return ful, event

    def cancel_fulfillment(self, order_id: int, fulfillment_id: int | None = None,
                           shop: str | None = None) -> Fulfillment:
        """Cancel a fulfilment (the latest by default), its units unshipped again; fires ``fulfillments/update``
        and ``orders/updated``."""
        state = self.shop_state(shop)
        now = self._now()
        with self.lock:
            order = self._order(state, order_id)
            ful = self._fulfillment(order, fulfillment_id)
            ful.status = "CANCELLED"
            ful.updated_at = now
            order.updated_at = now
        self.emit(state, "fulfillments/update", lambda b: b.fulfillment(order, ful))
        self.emit(state, "orders/updated", lambda b: b.order(order))
        return ful

    def _refund(self, state: ShopState, order: Order, amount_cents: int | None, note: str | None,
                now: datetime) -> Refund:
        """Add a refund of ``amount_cents`` (default: what is left), in both currencies of the order."""
        left = order.total_cents - order.refunded_cents
        amount = left if amount_cents is None else amount_cents
        presentment = order.presentment(amount)
        if presentment is not None and amount == left:
            # The rest in the buyer's currency too, so both totals come out whole.
            whole, paid = order.presentment_total, order.refunded_presentment
            presentment = (whole[0] - paid[0], presentment[1]) if whole and paid else presentment
        refund = Refund(state.store.new_id(), now, amount, note, presentment)
        order.refunds.append(refund)
        return refund

    def cancel_order(self, order_id: int, reason: str = "CUSTOMER", shop: str | None = None) -> Order:
        """Cancel and refund an order; fires ``orders/cancelled``, ``refunds/create``, ``orders/updated``."""
        state = self.shop_state(shop)
        now = self._now()
        with self.lock:
            order = self._order(state, order_id)
            order.cancelled_at = order.closed_at = now
            order.cancel_reason = reason
            refund = self._refund(state, order, None, "Order cancelled", now)
            order.updated_at = now
        self.emit(state, "orders/cancelled", lambda b: b.order(order))
        self.emit(state, "refunds/create", lambda b: b.refund(order, refund))
        self.emit(state, "orders/updated", lambda b: b.order(order))
        return order

    def refund_order(self, order_id: int, amount_cents: int | None = None, note: str | None = None,
                     shop: str | None = None) -> Refund:
        """Refund part (or the rest) of an order; fires ``refunds/create`` and ``orders/updated``."""
        state = self.shop_state(shop)
        now = self._now()
        with self.lock:
            order = self._order(state, order_id)
            refund = self._refund(state, order, amount_cents, note, now)
            order.updated_at = now
        self.emit(state, "refunds/create", lambda b: b.refund(order, refund))
        self.emit(state, "orders/updated", lambda b: b.order(order))
        return refund

    def delete_order(self, order_id: int, shop: str | None = None) -> Order:
        """Delete a cancelled or archived order, as the merchant can; fires ``orders/delete``.

        https://help.shopify.com/manual/orders/cancel-delete-order#delete-an-order : only archived or
        cancelled orders can be deleted (ValueError otherwise). The order is gone from GraphQL afterwards.
        """
        state = self.shop_state(shop)
        with self.lock:
            order = self._order(state, order_id)
            if order.cancelled_at is None and order.closed_at is None:
                raise ValueError("Only archived or cancelled orders can be deleted")
            state.store.remove_order(order_id)
        self.emit(state, "orders/delete", lambda b: b.deleted(order_id))
        return order

    def delete_product(self, product_id: int, shop: str | None = None) -> None:
        """Delete a product and its variants; fires ``products/delete``.

        Orders keep their lines, whose ``product`` (GraphQL) and ``product_id``/``variant_id`` (REST) are null
        from then on.
        """
        state = self.shop_state(shop)
        with self.lock:
            state.store.remove_product(product_id)
        self.emit(state, "products/delete", lambda b: b.deleted(product_id))

    def set_product_image(self, product_id: int, url: str | None, alt: str | None = None,
                          shop: str | None = None) -> None:
        """Replace (or with ``None`` remove) a product's featured image; its ``updatedAt`` moves."""
        state = self.shop_state(shop)
        with self.lock:
            product = state.store.products_by_id[product_id]
            product.image_url, product.image_alt = url, alt
            product.updated_at = self._now()
            state.touch()

    def set_collection_products(self, collection_id: int, product_ids: list[int], shop: str | None = None) -> None:
        """Replace a collection's products, as the merchant does in Shopify's admin (no product's ``updatedAt``
        moves and no product webhook fires: Shopify sends none for a membership change)."""
        state = self.shop_state(shop)
        with self.lock:
            collection = next(c for c in state.store.collections if c.id == collection_id)
            collection.product_ids = list(product_ids)
            collection.updated_at = self._now()
            state.touch()

    def set_billing_address(self, shop: str | None = None, **parts: str | None) -> None:
        """Change the shop's billing address (Settings > General): company, address1, address2, city, zip, ..."""
        state = self.shop_state(shop)
        record = state.store.shop
        with self.lock:
            for name, value in parts.items():
                if not hasattr(record, name):
                    raise ValueError(f"the shop has no address part '{name}'")
                setattr(record, name, value)
            record.updated_at = self._now()

    def delete_customer(self, customer_id: int, shop: str | None = None) -> None:
        """Delete a customer without orders (ValueError for one with orders, as Shopify); fires ``customers/delete``."""
        state = self.shop_state(shop)
        with self.lock:
            customer = state.store.remove_customer(customer_id)
        self.emit(state, "customers/delete", lambda b: b.customer_deleted(customer))

    def replace_store(self, store: Store, shop: str | None = None) -> None:
        """Swap a shop's whole data (customers, products, orders) for ``store``, e.g. to replay a timeline.

        ``store.shop`` must be the same shop (same domain). No webhooks are sent: apps see the difference
        through their next sync, as for changes made while they were not listening. The id counter never
        goes back, so ids handed out later (bulk operations, new orders, refunds) stay unique.
        """
        state = self.shop_state(shop)
        if store.shop.domain != state.store.shop.domain:
            raise ValueError(f"store of {store.shop.domain!r} cannot replace {state.store.shop.domain!r}")
        store.reindex()
        with self.lock:
            store.next_id = max(store.next_id, state.store.next_id)
            state.store = store
            state.touch()

    def request_customer_data(self, customer_id: int, shop: str | None = None) -> None:
        """Send the ``customers/data_request`` compliance webhook."""
        state = self.shop_state(shop)
        customer = state.store.customers_by_id[customer_id]
        request_id = state.store.new_id()
        self.emit(state, "customers/data_request", lambda b: b.customers_data_request(customer, request_id))

    def redact_customer(self, customer_id: int, shop: str | None = None) -> None:
        """Send the ``customers/redact`` compliance webhook."""
        state = self.shop_state(shop)
        customer = state.store.customers_by_id[customer_id]
        self.emit(state, "customers/redact", lambda b: b.customers_redact(customer))

    def redact_shop(self, shop: str | None = None) -> None:
        """Send the ``shop/redact`` compliance webhook (48 hours after uninstall on real Shopify)."""
        state = self.shop_state(shop)
        for client_id in list(self.apps):
            app = self.apps[client_id]
            if app.webhook_url:
                self._deliver(state, app, "shop/redact", PayloadBuilder(state.store, True).shop_redact(),
                              app.webhook_url)
