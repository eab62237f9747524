"""Webhook bodies: the REST resource JSON Shopify sends (snake_case, numeric ids, money as strings).

Shapes follow https://shopify.dev/docs/api/webhooks (orders/create, customers/update, ...). They are
NOT GraphQL shapes: ``id`` is a number with ``admin_graphql_api_id`` beside it, timestamps carry the
shop's UTC offset, ``tags`` is one comma-separated string, every price has a ``*_set`` twin.

Customer objects follow API 2025-01 ("New customer's webhook and changes to existing customer's webhooks
payload", https://shopify.dev/changelog/new-customer-s-webhook-and-changes-to-existing-customer-s-webhooks-payload):
every webhook containing a customer payload (customers/update, and the ``customer`` inside order bodies)
no longer carries ``tags`` (now ``customer.tags_added``/``customer.tags_removed``), ``email_marketing_consent``
(now ``customers_email_marketing_consent/update``) or ``sms_marketing_consent`` (now
``customers_marketing_consent/update``); the purchasing summary (``last_order_id``, ``last_order_name``)
moved to ``customers/purchasing_summary``. The webhook reference's sample customers/update and orders/*
bodies match this. GraphQL ``Customer.emailMarketingConsent`` and ``tags`` are unchanged.

Apps subscribed with an older API version get the older customer object: before 2025-01 it still carries
``tags``, from 2022-04 ``email_marketing_consent`` (``state``, ``opt_in_level``, ``consent_updated_at``;
https://shopify.dev/changelog/new-email-marketing-consent-for-customers-and-deprecated-fields), and before
2024-01 the legacy ``accepts_marketing``, ``accepts_marketing_updated_at`` and ``marketing_opt_in_level``
(https://shopify.dev/changelog/removal-of-accepts-marketing-fields-in-admin-api-customer-resources).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sandbox.shopify.models import Customer, Fulfillment, FulfillmentEvent, Order, Refund, ShopRecord, Store, gid, money
from sandbox.shopify.state import API_VERSION


class PayloadBuilder:
    """Build REST-shaped bodies for one store, hiding protected fields when the app lacks access."""

    def __init__(self, store: Store, protected_access: bool, api_version: str = API_VERSION):
        self.store = store
        self.api_version = api_version
        self.shop: ShopRecord = store.shop
        self.protected = protected_access
        self.tz = ZoneInfo(store.shop.iana_timezone)

    def ts(self, value: datetime | None) -> str | None:
        """Format a timestamp in the shop's time zone with its offset, as Shopify's REST API does."""
        return value.astimezone(self.tz).isoformat() if value else None

    def _set(self, cents: int, presentment: tuple[int, str] | None = None) -> dict[str, Any]:
        """Return a REST money bag: shop money, and the buyer's (presentment) money on a multi-currency order."""
        shop = {"amount": money(cents), "currency_code": self.shop.currency}
        if presentment is None:
            return {"shop_money": shop, "presentment_money": dict(shop)}
        return {"shop_money": shop, "presentment_money": {"amount": money(presentment[0]),
                                                          "currency_code": presentment[1]}}

    def _p(self, value: Any) -> Any:
        return value if self.protected else None

    def customer(self, c: Customer) -> dict[str, Any]:
        """Return the REST customer resource as 2025-01 webhooks carry it (customers/update, inside orders)."""
        address = self.address(c)
        return {
            "id": c.id,
            "email": self._p(c.email),
            "created_at": self.ts(c.created_at),
            "updated_at": self.ts(c.updated_at),
            "first_name": self._p(c.first_name),
            "last_name": self._p(c.last_name),
            "state": c.state.lower(),
            "note": c.note,
            "verified_email": c.verified_email,
            "multipass_identifier": None,
            "tax_exempt": False,
            "phone": self._p(c.phone),
            "currency": self.shop.currency,
            "tax_exemptions": [],
            "admin_graphql_api_id": c.gid,
            "default_address": address,
            "addresses": [address],
            **self._older_customer_fields(c),
        }

    def _older_customer_fields(self, c: Customer) -> dict[str, Any]:
        """Return what customer objects of API versions before 2025-01 carry besides (see the module doc)."""
        if self.api_version >= "2025-01":
            return {}
        fields: dict[str, Any] = {"tags": ", ".join(c.tags)}
        if self.api_version >= "2022-04":
            fields["email_marketing_consent"] = self.email_marketing_consent(c)["email_marketing_consent"]
        if self.api_version < "2024-01":
            fields["accepts_marketing"] = c.marketing_state == "SUBSCRIBED"
            fields["accepts_marketing_updated_at"] = self.ts(c.consent_updated_at)
            fields["marketing_opt_in_level"] = c.opt_in_level.lower() if c.opt_in_level else None
        return fields

    def email_marketing_consent(self, c: Customer) -> dict[str, Any]:
        """Return the ``customers_email_marketing_consent/update`` body (CUSTOMERS_EMAIL_MARKETING_CONSENT_UPDATE).

        Shape of the webhook reference's sample payload (https://shopify.dev/docs/api/webhooks, topic
        ``customers_email_marketing_consent/update``): ``customer_id`` (number), ``email_address`` and
        ``email_marketing_consent`` with ``state`` (lower-case, e.g. ``not_subscribed``), ``opt_in_level``
        and ``consent_updated_at`` (null when never set). The address is protected customer data.
        """
        return {
            "customer_id": c.id,
            "email_address": self._p(c.email),
            "email_marketing_consent": {
                "state": c.marketing_state.lower(),
                "opt_in_level": c.opt_in_level.lower() if c.opt_in_level else None,
                "consent_updated_at": self.ts(c.consent_updated_at),
            },
        }

    def address(self, c: Customer) -> dict[str, Any]:
        """Return the customer's default address."""
        return {
            "id": c.id + 1, "customer_id": c.id, "first_name": self._p(c.first_name),
            "last_name": self._p(c.last_name), "company": None, "address1": self._p("1 Sample Street"),
            "address2": None, "city": c.city or None, "province": None, "country": c.country,
            "zip": None, "phone": self._p(c.phone),
            "name": self._p(f"{c.first_name} {c.last_name}"), "province_code": None,
            "country_code": c.country, "country_name": c.country, "default": True,
        }

    def fulfillment(self, o: Order, f: Fulfillment) -> dict[str, Any]:
        """Return the REST fulfillment resource (fulfillments/create, fulfillments/update, inside orders).

        ``shipment_status`` is the latest carrier milestone in lower case (REST names the same milestones).
        """
        display = f.display_status
        shipment = display.lower() if display not in ("FULFILLED", "CANCELED") else None
        return {
            "id": f.id, "admin_graphql_api_id": f.gid, "order_id": o.id, "status": f.status.lower(),
            "created_at": self.ts(f.created_at), "updated_at": self.ts(f.updated_at),
            "service": "manual", "shipment_status": shipment, "location_id": None,
            "name": f.name or f"{o.name}.{o.fulfillments.index(f) + 1}", "tracking_company": f.tracking_company,
            "tracking_number": f.tracking_number, "tracking_numbers": [f.tracking_number] if f.tracking_number else [],
            "tracking_url": f.tracking_url, "tracking_urls": [f.tracking_url] if f.tracking_url else [],
            "line_items": [self.line_item(li, o) for li in o.line_items],
        }

    def fulfillment_event(self, o: Order, f: Fulfillment, event: FulfillmentEvent) -> dict[str, Any]:
        """Return the REST fulfillment event resource (``fulfillment_events/create``), e.g. a carrier's delivery.

        Shape of https://shopify.dev/docs/api/admin-rest/2025-01/resources/fulfillmentevent : ``status`` is a
        lower-case shipment status (``in_transit``, ``delivered``, ...), ``happened_at`` when the carrier saw it.
        """
        return {
            "id": event.id, "admin_graphql_api_id": event.gid, "fulfillment_id": f.id,
            "order_id": o.id, "shop_id": self.shop.id, "status": event.status.lower(), "message": event.message,
            "happened_at": self.ts(event.happened_at), "created_at": self.ts(event.created_at),
            "updated_at": self.ts(event.created_at), "estimated_delivery_at": self.ts(event.estimated_delivery_at),
            "city": event.city, "province": event.province, "country": event.country, "zip": None,
            "address1": None, "latitude": None, "longitude": None,
        }

    def line_item(self, li: Any, o: Order | None = None) -> dict[str, Any]:
        """Return a REST line item; ``product_id``/``variant_id`` are null once the product was deleted."""
        exists = li.product_id in self.store.products_by_id
        return {
            "id": li.id, "admin_graphql_api_id": li.gid, "variant_id": li.variant_id if exists else None,
            "product_id": li.product_id if exists else None, "title": li.title, "variant_title": li.variant_title,
            "name": f"{li.title} - {li.variant_title}", "sku": li.sku, "vendor": li.vendor,
            "quantity": li.quantity, "current_quantity": li.quantity, "fulfillable_quantity": 0,
            "price": money(li.unit_price_cents), "price_set": self._set(li.unit_price_cents, li.presentment),
            "total_discount": "0.00", "total_discount_set": self._set(0, o.presentment(0) if o else None),
            "gift_card": False,
            "requires_shipping": True, "taxable": True, "product_exists": exists, "properties": [],
        }

    def refund(self, o: Order, r: Refund) -> dict[str, Any]:
        """Return the REST refund resource (refunds/create, inside orders).

        Sandbox refunds are of an amount, not of lines: Shopify then records the whole amount as a
        ``refund_discrepancy`` order adjustment (negative: more went back than the refunded lines), and the
        transaction moves the money in the buyer's currency (REST transactions carry no shop-money twin).
        https://shopify.dev/docs/api/admin-rest/2025-01/resources/refund
        """
        paid, currency = r.presentment or (r.amount_cents, self.shop.currency)
        zero = o.presentment(0)
        return {
            "id": r.id, "admin_graphql_api_id": r.gid, "order_id": o.id, "note": r.note,
            "created_at": self.ts(r.created_at), "processed_at": self.ts(r.created_at), "restock": False,
            "user_id": None, "refund_line_items": [], "refund_shipping_lines": [], "duties": [],
            "total_duties_set": self._set(0, zero), "additional_fees": [],
            "total_additional_fees_set": self._set(0, zero),
            "order_adjustments": [{
                "id": r.id + 1, "order_id": o.id, "refund_id": r.id, "kind": "refund_discrepancy",
                "reason": "Refund discrepancy", "amount": money(-r.amount_cents),
                "amount_set": self._set(-r.amount_cents, (-paid, currency) if r.presentment else None),
                "tax_amount": "0.00", "tax_amount_set": self._set(0, zero)}],
            "transactions": [{
                "id": r.id + 2, "admin_graphql_api_id": gid("OrderTransaction", r.id + 2), "order_id": o.id,
                "kind": "refund", "status": "success", "amount": money(paid), "currency": currency,
                "gateway": "bogus", "created_at": self.ts(r.created_at), "processed_at": self.ts(r.created_at),
                "parent_id": None, "test": False, "total_unsettled_set": self._set(0, zero)}],
        }

    def order(self, o: Order) -> dict[str, Any]:
        """Return the REST order resource (orders/create, orders/updated, orders/fulfilled, ...)."""
        c = self.store.customers_by_id.get(o.customer_id) if o.customer_id else None
        total, subtotal = o.total_cents, o.subtotal_cents
        current = total - o.refunded_cents
        # In the buyer's currency the total is the sum of their line prices, and what is left is that less
        # what went back to them.
        buyer = o.presentment_total
        left = (buyer[0] - o.refunded_presentment[0], buyer[1]) if buyer and o.refunded_presentment else None
        fin = o.financial_status.lower()
        ful = {"FULFILLED": "fulfilled", "PARTIALLY_FULFILLED": "partial"}.get(o.fulfillment_status)
        return {
            "id": o.id, "admin_graphql_api_id": o.gid, "name": o.name, "number": o.number - 1000,
            "order_number": o.number, "email": self._p(o.email), "contact_email": self._p(o.email),
            "phone": self._p(o.phone), "created_at": self.ts(o.created_at),
            "updated_at": self.ts(o.updated_at), "processed_at": self.ts(o.processed_at),
            "cancelled_at": self.ts(o.cancelled_at),
            "cancel_reason": o.cancel_reason.lower() if o.cancel_reason else None,
            "closed_at": self.ts(o.closed_at), "confirmed": True, "test": False,
            "currency": self.shop.currency, "presentment_currency": o.buyer_currency,
            "customer_locale": o.customer_locale, "financial_status": fin, "fulfillment_status": ful,
            "tags": ", ".join(o.tags), "note": None, "source_name": "web",
            "buyer_accepts_marketing": bool(c and c.marketing_state == "SUBSCRIBED"),
            "subtotal_price": money(subtotal), "subtotal_price_set": self._set(subtotal, buyer),
            "total_price": money(total), "total_price_set": self._set(total, buyer),
            "current_total_price": money(current), "current_total_price_set": self._set(current, left),
            "current_subtotal_price": money(current), "current_subtotal_price_set": self._set(current, left),
            "total_tax": "0.00", "total_tax_set": self._set(0, o.presentment(0)),
            "total_discounts": "0.00", "total_discounts_set": self._set(0, o.presentment(0)),
            "total_line_items_price": money(subtotal),
            "total_line_items_price_set": self._set(subtotal, buyer),
            "customer": self.customer(c) if c else None,
            "shipping_address": self.address(c) if c else None,
            "billing_address": self.address(c) if c else None,
            "line_items": [self.line_item(li, o) for li in o.line_items],
            "fulfillments": [self.fulfillment(o, f) for f in o.fulfillments],
            "refunds": [self.refund(o, r) for r in o.refunds],
        }

    @staticmethod
    def deleted(resource_id: int) -> dict[str, Any]:
        """Return the orders/delete or products/delete body: only the id (the object is gone)."""
        return {"id": resource_id}

    @staticmethod
    def customer_deleted(c: Customer) -> dict[str, Any]:
        """Return the customers/delete body: the id and empty leftovers, no contact data."""
        return {"id": c.id, "phone": None, "addresses": [], "tax_exemptions": [], "admin_graphql_api_id": c.gid}

    def shop_resource(self) -> dict[str, Any]:
        """Return the REST shop resource (app/uninstalled)."""
        s = self.shop
        return {
            "id": s.id, "name": s.name, "email": s.email, "domain": s.domain, "myshopify_domain": s.domain,
            "country_code": s.country, "currency": s.currency, "iana_timezone": s.iana_timezone,
            "created_at": self.ts(s.created_at), "updated_at": self.ts(s.updated_at),
            "plan_name": "basic", "shop_owner": "Sandbox Owner",
        }

    def bulk_finish(self, op: Any) -> dict[str, Any]:
        """Return the bulk_operations/finish body."""
        return {
            "admin_graphql_api_id": gid("BulkOperation", op.id), "completed_at": self.ts(op.completed_at),
            "created_at": self.ts(op.created_at), "error_code": op.error_code.lower() if op.error_code else None,
            "status": op.status.lower(), "type": op.type.lower(),
        }

    def customers_data_request(self, c: Customer, request_id: int) -> dict[str, Any]:
        """Return the customers/data_request compliance body."""
        return {
            "shop_id": self.shop.id, "shop_domain": self.shop.domain,
            "orders_requested": [o.id for o in self.store.customer_orders(c.id)],
            "customer": {"id": c.id, "email": c.email, "phone": c.phone},
            "data_request": {"id": request_id},
        }

    def customers_redact(self, c: Customer) -> dict[str, Any]:
        """Return the customers/redact compliance body."""
        return {
            "shop_id": self.shop.id, "shop_domain": self.shop.domain,
            "customer": {"id": c.id, "email": c.email, "phone": c.phone},
            "orders_to_redact": [o.id for o in self.store.customer_orders(c.id)],
        }

    def shop_redact(self) -> dict[str, Any]:
        """Return the shop/redact compliance body."""
        return {"shop_id": self.shop.id, "shop_domain": self.shop.domain}
