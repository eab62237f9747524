"""Resolvers of the sandbox schema over the seeded store, with Shopify's access rules.

Rules enforced here: access scopes (ACCESS_DENIED, https://shopify.dev/docs/api/usage/access-scopes),
orders older than 60 days only with ``read_all_orders`` (silently left out), customer name, e-mail and
phone null without protected customer data access
(https://shopify.dev/docs/apps/launch/protected-customer-data).
"""

from __future__ import annotations

import re
import zlib
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from graphql import GraphQLError, GraphQLResolveInfo, GraphQLSchema

from sandbox.shopify.context import Context
from sandbox.shopify.discounts import DiscountCode
from sandbox.shopify.models import (
    BulkOperation,
    Collection,
    Customer,
    Fulfillment,
    FulfillmentEvent,
    LineItem,
    Order,
    Product,
    Refund,
    Return,
    ShopPolicy,
    ShopRecord,
    Variant,
    gid,
    money,
)
from sandbox.shopify.paging import connection, matches, parse_search
from sandbox.shopify.webhooks import Subscription, topic_to_enum

_GID = re.compile(r"gid://shopify/(\w+)/(\d+)")
_EN = Locale("en")


def _ctx(info: GraphQLResolveInfo) -> Context:
    return info.context


def parse_gid(value: str) -> tuple[str, int] | None:
    """Split ``gid://shopify/Order/1`` into ("Order", 1)."""
    match = _GID.fullmatch(value or "")
    return (match[1], int(match[2])) if match else None


def _stamp(dt: datetime | None) -> str | None:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z") if dt else None


def _bag(cents: int, currency: str, presentment: tuple[int, str] | None = None) -> dict[str, Any]:
    """Return a MoneyBag: shop money, and the buyer's (presentment) money when the order has another currency."""
    amount = {"amount": money(cents), "currencyCode": currency}
    if presentment is None:
        return {"shopMoney": amount, "presentmentMoney": dict(amount)}
    return {"shopMoney": amount, "presentmentMoney": {"amount": money(presentment[0]),
                                                      "currencyCode": presentment[1]}}


# ---- list queries --------------------------------------------------------------------------------------

_DATE_GETTERS = {"created_at": lambda o: o.created_at, "updated_at": lambda o: o.updated_at,
                 "id": lambda o: o.id}
ORDER_GETTERS = {**_DATE_GETTERS, "processed_at": lambda o: o.processed_at,
                 "financial_status": lambda o: o.financial_status,
                 "fulfillment_status": lambda o: o.fulfillment_status,
                 "customer_id": lambda o: o.customer_id}
CUSTOMER_GETTERS = {**_DATE_GETTERS, "email": lambda c: c.email, "country": lambda c: c.country}
PRODUCT_GETTERS = {**_DATE_GETTERS, "product_type": lambda p: p.product_type, "vendor": lambda p: p.vendor,
                   "sku": lambda p: p.variants[0].sku if p.variants else None}
COLLECTION_GETTERS = {"id": lambda c: c.id, "updated_at": lambda c: c.updated_at, "title": lambda c: c.title,
                      "handle": lambda c: c.handle}
SORT_ATTR = {"HAPPENED_AT": "happened_at", "CREATED_AT": "created_at", "UPDATED_AT": "updated_at",
             "PROCESSED_AT": "processed_at", "ID": "id", "TITLE": "title", "POSITION": "position",
             "SKU": "sku", "CODE": "code"}


def _sort_key(sort_key: str | None) -> Any:
    attr = SORT_ATTR.get(sort_key or "ID", "id")
    return lambda item: (getattr(item, attr), item.id)


def _list(ctx: Context, info: GraphQLResolveInfo, items: list[Any], getters: dict[str, Any],
          args: dict[str, Any], kind: str | None = None, keep: Any = None) -> dict[str, Any]:
    """Filter by ``query:`` and page; with ``kind`` the shop-wide sorted list is reused between requests."""
    terms, warnings = parse_search(args.get("query"), tuple(getters), ctx.store.shop.iana_timezone)
    if warnings:
        ctx.search.append({"path": list(info.path.as_list()), "query": args.get("query"),
                           "warnings": warnings})
    key = _sort_key(args.get("sortKey"))
    if kind is None:
        if terms:
            items = [i for i in items if matches(i, terms, getters)]
        return connection(items, key, args, unbounded=ctx.bulk)
    ordered, keys = ctx.state.sorted_items(kind, args.get("sortKey") or "ID", items, key)
    if terms or keep is not None:
        picked = [n for n, item in enumerate(ordered)
                  if (keep is None or keep(item)) and (not terms or matches(item, terms, getters))]
        ordered, keys = [ordered[n] for n in picked], [keys[n] for n in picked]
    return connection(ordered, key, args, unbounded=ctx.bulk, keys=keys)


def q_orders(_: Any, info: GraphQLResolveInfo, **args: Any) -> dict[str, Any]:
    """Resolve ``orders``."""
    ctx = _ctx(info)
    ctx.require("read_orders", "orders")
    keep = None if ctx.app.has_scope("read_all_orders") else ctx.order_visible
    return _list(ctx, info, ctx.store.orders, ORDER_GETTERS, args, kind="orders", keep=keep)


def q_customers(_: Any, info: GraphQLResolveInfo, **args: Any) -> dict[str, Any]:
    """Resolve ``customers``."""
    ctx = _ctx(info)
    ctx.require("read_customers", "customers")
    return _list(ctx, info, ctx.store.customers, CUSTOMER_GETTERS, args, kind="customers")


def q_products(_: Any, info: GraphQLResolveInfo, **args: Any) -> dict[str, Any]:
    """Resolve ``products``."""
    ctx = _ctx(info)
    ctx.require("read_products", "products")
    return _list(ctx, info, ctx.store.products, PRODUCT_GETTERS, args, kind="products")


def q_collections(_: Any, info: GraphQLResolveInfo, **args: Any) -> dict[str, Any]:
    """Resolve ``collections`` (the shop's custom collections)."""
    ctx = _ctx(info)
    ctx.require("read_products", "collections")
    return _list(ctx, info, ctx.store.collections, COLLECTION_GETTERS, args)


def _collection_products(c: Collection, info: GraphQLResolveInfo, **args: Any) -> dict[str, Any]:
    """Resolve ``Collection.products``: COLLECTION_DEFAULT (and MANUAL) is the merchant's order."""
    store = _ctx(info).store
    items = [store.products_by_id[n] for n in c.product_ids if n in store.products_by_id]
    sort = args.get("sortKey") or "COLLECTION_DEFAULT"
    if sort in ("COLLECTION_DEFAULT", "MANUAL"):
        position = {p.id: n for n, p in enumerate(items)}
        key: Any = lambda p: (position[p.id], p.id)  # noqa: E731
    else:
        key = _sort_key(sort)
    return connection(items, key, args, unbounded=_ctx(info).bulk)


def _product_collections(p: Product, info: GraphQLResolveInfo, **args: Any) -> dict[str, Any]:
    """Resolve ``Product.collections``: the collections holding the product."""
    held = [c for c in _ctx(info).store.collections if p.id in c.product_ids]
    return _list(_ctx(info), info, held, COLLECTION_GETTERS, args)


# ---- single objects and node ---------------------------------------------------------------------------

def lookup(ctx: Context, kind: str, number: int, field_name: str) -> Any:
    """Find a node by type and numeric id, enforcing the scope its type needs."""
    store = ctx.store
    if kind == "Order":
        ctx.require("read_orders", field_name)
        order = store.orders_by_id.get(number)
        return order if order is not None and ctx.order_visible(order) else None
    if kind == "Customer":
        ctx.require("read_customers", field_name)
        return store.customers_by_id.get(number)
    if kind == "Product":
        ctx.require("read_products", field_name)
        return store.products_by_id.get(number)
    if kind == "Collection":
        ctx.require("read_products", field_name)
        return next((c for c in store.collections if c.id == number), None)
    if kind == "ProductVariant":
        ctx.require("read_products", field_name)
        return store.variants_by_id.get(number)
    if kind == "Shop":
        return store.shop if store.shop.id == number else None
    if kind == "BulkOperation":
        return ctx.bulk_ops.get(ctx, number)
    if kind == "WebhookSubscription":
        sub = ctx.state.subscriptions.get(number)
        return sub if sub is not None and sub.client_id == ctx.app.client_id else None
    if kind == "DiscountCodeNode":
        ctx.require("read_discounts", field_name)
        return ctx.state.discounts.get(number)
    return None


def _by_id(kind: str, field_name: str) -> Any:
    def resolve(_: Any, info: GraphQLResolveInfo, id: str) -> Any:  # noqa: A002 - GraphQL argument name
        parsed = parse_gid(id)
        if parsed is None:
            raise GraphQLError(f"Invalid global id '{id}'", extensions={"code": "argumentLiteralsIncompatible"})
        if parsed[0] != kind:
            return None
        return lookup(_ctx(info), kind, parsed[1], field_name)
    resolve.__doc__ = f"Resolve ``{field_name}(id:)``."
    return resolve


def q_fulfillment(_: Any, info: GraphQLResolveInfo, id: str) -> Any:  # noqa: A002 - GraphQL argument name
    """Resolve ``fulfillment(id:)`` (the order it belongs to must be visible to the app)."""
    parsed = parse_gid(id)
    if parsed is None:
        raise GraphQLError(f"Invalid global id '{id}'", extensions={"code": "argumentLiteralsIncompatible"})
    ctx = _ctx(info)
    ctx.require("read_orders", "fulfillment")
    owner = ctx.store.fulfillment_owner(parsed[1]) if parsed[0] == "Fulfillment" else None
    return owner[1] if owner is not None and ctx.order_visible(owner[0]) else None


def _fulfillment_name(f: Fulfillment, info: GraphQLResolveInfo) -> str:
    owner = _ctx(info).store.fulfillment_owner(f.id)
    return f.name or (f"{owner[0].name}.{owner[0].fulfillments.index(f) + 1}" if owner else str(f.id))


def _fulfillment_fields() -> dict[str, Any]:
    return {
        "totalQuantity": lambda f, i: f.quantity,
        "name": _fulfillment_name,
        "trackingInfo": lambda f, i, **a: [{"company": f.tracking_company, "number": f.tracking_number,
                                            "url": f.tracking_url}][:a.get("first") or 1]
        if f.tracking_number or f.tracking_company else [],
        "events": lambda f, i, **a: connection(f.events, _sort_key(a.get("sortKey") or "HAPPENED_AT"), a,
                                               unbounded=_ctx(i).bulk),
    }


def q_node(_: Any, info: GraphQLResolveInfo, id: str) -> Any:  # noqa: A002 - GraphQL argument name
    """Resolve ``node(id:)``."""
    parsed = parse_gid(id)
    if parsed is None:
        raise GraphQLError(f"Invalid global id '{id}'", extensions={"code": "argumentLiteralsIncompatible"})
    return lookup(_ctx(info), parsed[0], parsed[1], "node")


def q_nodes(_: Any, info: GraphQLResolveInfo, ids: list[str]) -> list[Any]:
    """Resolve ``nodes(ids:)``."""
    return [q_node(None, info, i) for i in ids]


def q_current_bulk(_: Any, info: GraphQLResolveInfo, type: str = "QUERY") -> BulkOperation | None:  # noqa: A002
    """Resolve ``currentBulkOperation``."""
    ctx = _ctx(info)
    return ctx.bulk_ops.current(ctx, type)


def q_webhook_subscriptions(_: Any, info: GraphQLResolveInfo, **args: Any) -> dict[str, Any]:
    """Resolve ``webhookSubscriptions``."""
    ctx = _ctx(info)
    subs = [s for s in ctx.state.subscriptions.values() if s.client_id == ctx.app.client_id]
    if args.get("topics"):
        subs = [s for s in subs if topic_to_enum(s.topic) in args["topics"]]
    if args.get("callbackUrl"):
        subs = [s for s in subs if s.callback_url == args["callbackUrl"]]
    return connection(subs, _sort_key(args.get("sortKey")), args)


# ---- type fields ---------------------------------------------------------------------------------------

def _country_name(code: str) -> str:
    return _EN.territories.get(code, code)


def _address(ctx: Context, c: Customer) -> dict[str, Any]:
    p = ctx.protected
    return {"id": gid("MailingAddress", c.id + 1) + "?model_name=CustomerAddress", "city": c.city or None,
            "country": _country_name(c.country), "countryCodeV2": c.country, "province": None,
            "provinceCode": None, "zip": None, "timeZone": c.time_zone, "firstName": p(c.first_name),
            "lastName": p(c.last_name), "name": p(f"{c.first_name} {c.last_name}"), "phone": p(c.phone),
            "address1": p("1 Sample Street")}


def _shop_fields() -> dict[str, Any]:
    def tz_now(s: ShopRecord, info: GraphQLResolveInfo) -> datetime:
        return _ctx(info).now.astimezone(ZoneInfo(s.iana_timezone))
    return {
        "id": lambda s, i: s.gid,
        "contactEmail": lambda s, i: s.email,
        "myshopifyDomain": lambda s, i: s.domain,
        "currencyCode": lambda s, i: s.currency,
        "timezoneAbbreviation": lambda s, i: tz_now(s, i).tzname(),
        "timezoneOffsetMinutes": lambda s, i: int(tz_now(s, i).utcoffset().total_seconds() // 60),
        "primaryDomain": lambda s, i: {"id": gid("Domain", s.id), "host": s.domain, "url": f"https://{s.domain}"},
        "billingAddress": _billing_address,
        "shopPolicies": _shop_policies,
        "url": lambda s, i: f"https://{s.domain}",
    }


def _shop_policies(shop: ShopRecord, info: Any) -> list[ShopPolicy]:
    """Return the shop's policies; a shop built without any (not seeded) has its default refund policy only."""
    if shop.policies:
        return list(shop.policies)
    if not shop.refund_policy:
        return []
    return [ShopPolicy(id=shop.id * 10 + 1, type="REFUND_POLICY", title="Refund policy", body=shop.refund_policy,
                       url=f"https://{shop.domain}/policies/refund-policy",
                       created_at=datetime(2024, 1, 1, tzinfo=UTC))]


# Countries that write the postal code before the city (the rest: city, province code, postal code).
_ZIP_FIRST = frozenset({"AT", "BE", "CH", "DE", "DK", "ES", "FI", "FR", "IT", "NL", "NO", "PL", "PT", "SE"})


def _billing_address(s: ShopRecord, info: GraphQLResolveInfo) -> dict[str, Any]:
    """Resolve ``Shop.billingAddress`` (https://shopify.dev/docs/api/admin-graphql/2025-01/objects/ShopAddress)."""
    return {"id": gid("ShopAddress", s.id), "company": s.company, "address1": s.address1, "address2": s.address2,
            "city": s.city, "province": s.province, "provinceCode": s.province_code, "zip": s.zip,
            "countryCodeV2": s.country, "country": _country_name(s.country) if s.country else None,
            "phone": s.phone}


def _formatted_address(a: dict[str, Any], info: GraphQLResolveInfo, withCompany: bool = True) -> list[str]:  # noqa: N803
    """Resolve ``ShopAddress.formatted``: the address as lines, in the country's order."""
    if a["countryCodeV2"] in _ZIP_FIRST:
        area = " ".join(p for p in (a["zip"], a["city"]) if p)
    else:
        area = " ".join(p for p in (a["city"], a["provinceCode"], a["zip"]) if p)
    lines = [a["company"] if withCompany else None, a["address1"], a["address2"], area, a["country"]]
    return [line for line in lines if line]


def _order_customer(o: Order, info: GraphQLResolveInfo) -> Customer | None:
    ctx = _ctx(info)
    ctx.require("read_customers", "customer")
    return ctx.store.customers_by_id.get(o.customer_id) if o.customer_id else None


def _order_address(o: Order, info: GraphQLResolveInfo) -> dict[str, Any] | None:
    ctx = _ctx(info)
    c = ctx.store.customers_by_id.get(o.customer_id) if o.customer_id else None
    return _address(ctx, c) if c else None


def _first(items: list[Any], args: dict[str, Any], ctx: Context) -> list[Any]:
    first = args.get("first")
    return items if first is None or ctx.bulk else items[:first]


def _order_fields() -> dict[str, Any]:
    def cur(o: Order, info: GraphQLResolveInfo) -> str:
        return o.currency
    return {
        "id": lambda o, i: o.gid,
        "closed": lambda o, i: o.closed_at is not None,
        "test": lambda o, i: False,
        "currencyCode": cur,
        "presentmentCurrencyCode": lambda o, i: o.buyer_currency,
        "displayFinancialStatus": lambda o, i: o.financial_status,
        "displayFulfillmentStatus": lambda o, i: o.fulfillment_status,
        "returnStatus": lambda o, i: o.return_status,
        "totalPriceSet": lambda o, i: _bag(o.total_cents, o.currency, o.presentment_total),
        "subtotalPriceSet": lambda o, i: _bag(o.subtotal_cents, o.currency, o.presentment_total),
        "totalRefundedSet": lambda o, i: _bag(o.refunded_cents, o.currency, o.refunded_presentment),
        "customer": _order_customer,
        "lineItems": lambda o, i, **a: connection(o.line_items, _sort_key("ID"), a, unbounded=_ctx(i).bulk),
        "fulfillments": lambda o, i, **a: _first(o.fulfillments, a, _ctx(i)),
        "refunds": lambda o, i, **a: _first(o.refunds, a, _ctx(i)),
        "returns": lambda o, i, **a: connection(o.returns, _sort_key("ID"), a, unbounded=_ctx(i).bulk),
        "email": lambda o, i: _ctx(i).protected(o.email),
        "phone": lambda o, i: _ctx(i).protected(o.phone),
        "tags": lambda o, i: list(o.tags),
        "shippingAddress": _order_address,
    }


def _line_fields() -> dict[str, Any]:
    def cur(info: GraphQLResolveInfo) -> str:
        return _ctx(info).store.shop.currency
    return {
        "id": lambda li, i: li.gid,
        "currentQuantity": lambda li, i: li.quantity,
        "name": lambda li, i: f"{li.title} - {li.variant_title}",
        "variant": lambda li, i: _ctx(i).store.variants_by_id.get(li.variant_id),
        "product": lambda li, i: _ctx(i).store.products_by_id.get(li.product_id),
        "originalUnitPriceSet": lambda li, i: _bag(li.unit_price_cents, cur(i), li.presentment),
        "originalTotalSet": lambda li, i: _bag(li.unit_price_cents * li.quantity, cur(i),
                                               (li.presentment[0] * li.quantity, li.presentment[1])
                                               if li.presentment else None),
    }


def _metafield(c: Customer, info: GraphQLResolveInfo, key: str, namespace: str | None = None
               ) -> dict[str, Any] | None:
    """Resolve ``Customer.metafield``: ``key`` alone may be "namespace.key" (no app-reserved namespace here).

    https://shopify.dev/docs/api/admin-graphql/2025-01/objects/Customer#field-metafield
    """
    full = f"{namespace}.{key}" if namespace else key
    found = c.metafields.get(full)
    if found is None:
        return None
    ns, _, name = full.rpartition(".")
    return {"id": f"gid://shopify/Metafield/{zlib.crc32(f'{c.id}:{full}'.encode())}", "namespace": ns, "key": name,
            "type": found[0], "value": found[1]}


def _customer_fields() -> dict[str, Any]:
    def orders(c: Customer, info: GraphQLResolveInfo, **args: Any) -> dict[str, Any]:
        ctx = _ctx(info)
        ctx.require("read_orders", "orders")
        visible = [o for o in ctx.store.customer_orders(c.id) if ctx.order_visible(o)]
        return _list(ctx, info, visible, ORDER_GETTERS, args)

    def last_order(c: Customer, info: GraphQLResolveInfo) -> Order | None:
        ctx = _ctx(info)
        ctx.require("read_orders", "lastOrder")
        visible = [o for o in ctx.store.customer_orders(c.id) if ctx.order_visible(o)]
        return visible[-1] if visible else None

    def spent(c: Customer, info: GraphQLResolveInfo) -> dict[str, Any]:
        store = _ctx(info).store
        cents = sum(o.total_cents - o.refunded_cents for o in store.customer_orders(c.id) if not o.cancelled_at)
        return {"amount": money(cents), "currencyCode": store.shop.currency}

    return {
        "id": lambda c, i: c.gid,
        "firstName": lambda c, i: _ctx(i).protected(c.first_name),
        "lastName": lambda c, i: _ctx(i).protected(c.last_name),
        "email": lambda c, i: _ctx(i).protected(c.email),
        "phone": lambda c, i: _ctx(i).protected(c.phone),
        "emailMarketingConsent": lambda c, i: {"marketingState": c.marketing_state,
                                               "marketingOptInLevel": c.opt_in_level,
                                               "consentUpdatedAt": c.consent_updated_at},
        "defaultAddress": lambda c, i: _address(_ctx(i), c),
        "numberOfOrders": lambda c, i: len(_ctx(i).store.customer_orders(c.id)),
        "amountSpent": spent,
        "lastOrder": last_order,
        "orders": orders,
        "metafield": _metafield,
        "tags": lambda c, i: list(c.tags),
    }


def _product_fields() -> dict[str, Any]:
    return {
        "id": lambda p, i: p.gid,
        "tags": lambda p, i: list(p.tags),
        "variants": lambda p, i, **a: connection(p.variants, _sort_key(a.get("sortKey") or "POSITION"), a,
                                                 unbounded=_ctx(i).bulk),
        "totalInventory": lambda p, i: sum(v.inventory_quantity for v in p.variants),
        "publishedAt": lambda p, i: p.created_at,
        "featuredMedia": _featured_media,
        "collections": _product_collections,
    }


def _featured_media(p: Product, info: GraphQLResolveInfo) -> dict[str, Any] | None:
    """Resolve ``Product.featuredMedia`` as a ready MediaImage (its preview is the image itself)."""
    if not p.image_url:
        return None
    image = {"id": gid("ImageSource", p.id), "altText": p.image_alt, "url": p.image_url, "width": 1200,
             "height": 1200}
    return {"id": gid("MediaImage", p.id), "alt": p.image_alt, "mediaContentType": "IMAGE", "image": image,
            "preview": {"image": image, "status": "READY"}, "status": "READY"}


def _variant_fields() -> dict[str, Any]:
    def product(v: Variant, info: GraphQLResolveInfo) -> Product:
        return _ctx(info).store.products_by_id[v.product_id]
    return {
        "id": lambda v, i: v.gid,
        "displayName": lambda v, i: f"{product(v, i).title} - {v.title}",
        "price": lambda v, i: money(v.price_cents),
        "compareAtPrice": lambda v, i: None,
        "product": product,
    }


def _discount_fields() -> dict[str, Any]:
    return {
        "status": lambda d, i: d.status(_ctx(i).now),
        "summary": lambda d, i: d.summary(),
        "startsAt": lambda d, i: d.starts_at,
        "endsAt": lambda d, i: d.ends_at,
        "asyncUsageCount": lambda d, i: 0,
        "codes": lambda d, i, **a: connection(
            [{"id": gid("DiscountRedeemCode", d.code_id), "code": d.code, "asyncUsageCount": 0,
              "_key": d.code_id}], lambda r: (r["_key"], r["_key"]), a),
        "updatedAt": lambda d, i: d.created_at,
    }


def _subscription_fields() -> dict[str, Any]:
    return {
        "id": lambda s, i: gid("WebhookSubscription", s.id),
        "topic": lambda s, i: topic_to_enum(s.topic),
        "endpoint": lambda s, i: {"callbackUrl": s.callback_url},
        "includeFields": lambda s, i: list(s.include_fields),
    }


TYPE_NAMES: dict[type, str] = {
    ShopRecord: "Shop", ShopPolicy: "ShopPolicy", Order: "Order", Customer: "Customer", Product: "Product",
    Variant: "ProductVariant", Collection: "Collection",
    LineItem: "LineItem", Fulfillment: "Fulfillment", FulfillmentEvent: "FulfillmentEvent",
    Refund: "Refund", Return: "Return",
    DiscountCode: "DiscountCodeNode", Subscription: "WebhookSubscription", BulkOperation: "BulkOperation",
}


@lru_cache(maxsize=512)
def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def default_resolver(source: Any, info: GraphQLResolveInfo, **_: Any) -> Any:
    """Read a dict key, or the snake_case attribute of a record (``createdAt`` -> ``created_at``)."""
    name = info.field_name
    if isinstance(source, dict):
        return source.get(name)
    if name == "legacyResourceId":
        return source.id
    if name == "id" and hasattr(source, "gid"):
        return source.gid
    return getattr(source, _snake(name), None)


def install_resolvers(schema: GraphQLSchema, mutations: dict[str, Any]) -> None:
    """Attach resolvers, type resolvers and scalar serializers to the built schema."""
    tm = schema.type_map
    roots = {
        "shop": lambda _, i: _ctx(i).store.shop, "orders": q_orders, "order": _by_id("Order", "order"),
        "customers": q_customers, "customer": _by_id("Customer", "customer"), "products": q_products,
        "collections": q_collections, "product": _by_id("Product", "product"), "node": q_node, "nodes": q_nodes,
        "currentBulkOperation": q_current_bulk, "fulfillment": q_fulfillment,
        "webhookSubscriptions": q_webhook_subscriptions,
        "shopLocales": lambda _, i, **_kw: [{"locale": _ctx(i).store.shop.primary_locale, "name": "English"
                                             if _ctx(i).store.shop.primary_locale == "en" else
                                             _ctx(i).store.shop.primary_locale, "primary": True,
                                             "published": True}],
    }
    per_type = {"QueryRoot": roots, "Mutation": mutations, "Shop": _shop_fields(), "Order": _order_fields(),
                "LineItem": _line_fields(), "Customer": _customer_fields(), "Product": _product_fields(),
                "ProductVariant": _variant_fields(),
                "Collection": {"id": lambda c, i: c.gid, "products": _collection_products},
                "DiscountCodeBasic": _discount_fields(),
                "DiscountCodeFreeShipping": {**_discount_fields(), "maximumShippingPrice": lambda d, i: None
                                             if d.maximum_shipping_cents is None else
                                             {"amount": money(d.maximum_shipping_cents),
                                              "currencyCode": _ctx(i).store.shop.currency}},
                "DiscountCodeNode": {"id": lambda d, i: d.gid, "codeDiscount": lambda d, i: d},
                "WebhookSubscription": _subscription_fields(),
                "ShopAddress": {"formatted": _formatted_address},
                "ShopPolicy": {"updatedAt": lambda p, i: p.created_at},
                "Fulfillment": _fulfillment_fields(),
                "Return": {"totalQuantity": lambda r, i: r.quantity},
                "Refund": {"totalRefundedSet": lambda r, i: _bag(r.amount_cents, _ctx(i).store.shop.currency,
                                                                 r.presentment),
                           "updatedAt": lambda r, i: r.created_at},
                "BulkOperation": {"id": lambda b, i: gid("BulkOperation", b.id),
                                  "url": lambda b, i: b.url, "partialDataUrl": lambda b, i: b.partial_data_url}}
    for type_name, fields in per_type.items():
        for field_name, fn in fields.items():
            tm[type_name].fields[field_name].resolve = fn
    tm["Node"].resolve_type = lambda obj, info, t: TYPE_NAMES.get(type(obj))
    tm["DiscountCode"].resolve_type = lambda obj, info, t: \
        "DiscountCodeFreeShipping" if obj.free_shipping else "DiscountCodeBasic"
    tm["Media"].resolve_type = lambda obj, info, t: "MediaImage"
    tm["WebhookSubscriptionEndpoint"].resolve_type = lambda obj, info, t: "WebhookHttpEndpoint"
    outputs = {"DateTime": lambda v: _stamp(v) if isinstance(v, datetime) else v, "UnsignedInt64": str,
               "Date": lambda v: v.date().isoformat() if isinstance(v, datetime) else v, "HTML": str,
               "Decimal": str, "Money": str, "URL": str}
    for name, fn in outputs.items():
        # graphql-core 3.3 calls coerce_output_value; 3.2 calls serialize.
        tm[name].serialize = fn
        tm[name].coerce_output_value = fn
