"""Mutation resolvers: bulk queries, basic and free-shipping discount codes, webhook subscriptions, tags."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlparse

from graphql import GraphQLResolveInfo

from sandbox.shopify.context import Context
from sandbox.shopify.discounts import DiscountCode, validate_free_shipping_input, validate_input
from sandbox.shopify.resolvers import parse_gid
from sandbox.shopify.webhooks import Subscription, enum_to_topic


def _ctx(info: GraphQLResolveInfo) -> Context:
    return info.context


def bulk_operation_run_query(_: Any, info: GraphQLResolveInfo, query: str) -> dict[str, Any]:
    """Resolve ``bulkOperationRunQuery``."""
    ctx = _ctx(info)
    return ctx.bulk_ops.run_query(ctx, query)


def _when(value: Any) -> datetime | None:
    if value is None:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _minimum_cents(data: dict[str, Any]) -> int | None:
    subtotal = ((data.get("minimumRequirement") or {}).get("subtotal") or {}).get("greaterThanOrEqualToSubtotal")
    return None if subtotal is None else int(Decimal(str(subtotal)) * 100)


def _error(root: str, path: list[str], message: str, code: str) -> dict[str, Any]:
    return {"codeDiscountNode": None,
            "userErrors": [{"field": [root, *path], "message": message, "code": code, "extraInfo": None}]}


def _dates(root: str, data: dict[str, Any], errors: list[dict[str, Any]]) -> tuple[datetime | None, datetime | None]:
    try:
        return _when(data.get("startsAt")), _when(data.get("endsAt"))
    except ValueError:
        errors.append({"field": [root, "startsAt"], "message": "Starts at is invalid", "code": "INVALID",
                       "extraInfo": None})
        return None, None


def _customers(ctx: Context, root: str, data: dict[str, Any]) -> tuple[tuple[str, ...], dict[str, Any] | None]:
    """Return the customer ids the code is for, or the userErrors answer when one does not exist."""
    selection = data["customerSelection"]
    customers = tuple((selection.get("customers") or {}).get("add") or ())
    for cid in customers:
        parsed = parse_gid(cid)
        if parsed is None or parsed[0] != "Customer" or parsed[1] not in ctx.store.customers_by_id:
            return customers, _error(root, ["customerSelection", "customers", "add"],
                                     f"Customer {cid} does not exist", "INVALID")
    return customers, None


def _store_unique(ctx: Context, root: str, code: str, make: Any) -> dict[str, Any]:
    """Store the discount ``make()`` builds unless its code is taken meanwhile (checked under the world's lock)."""
    with ctx.world.lock:
        if code.strip().lower() in {d.code.lower() for d in ctx.state.discounts.values()}:
            return _error(root, ["code"], "Code must be unique. Please try a different code.", "TAKEN")
        discount = make()
        ctx.state.discounts[discount.id] = discount
    return {"codeDiscountNode": discount, "userErrors": []}


def discount_code_basic_create(_: Any, info: GraphQLResolveInfo, basicCodeDiscount: dict[str, Any]  # noqa: N803
                               ) -> dict[str, Any]:
    """Resolve ``discountCodeBasicCreate`` (requires ``write_discounts``)."""
    ctx = _ctx(info)
    ctx.require("write_discounts", "discountCodeBasicCreate")
    data, root = basicCodeDiscount, "basicCodeDiscount"
    existing = {d.code.lower() for d in ctx.state.discounts.values()}
    errors = validate_input(data, existing)
    starts, ends = _dates(root, data, errors)
    if errors:
        return {"codeDiscountNode": None, "userErrors": errors}
    value = data["customerGets"]["value"]
    amount = None
    if "discountAmount" in value:
        try:
            amount = int(Decimal(str(value["discountAmount"]["amount"])) * 100)
        except (InvalidOperation, KeyError, TypeError):
            return _error(root, ["customerGets", "value", "discountAmount", "amount"], "Amount is invalid", "INVALID")
    customers, refused = _customers(ctx, root, data)
    if refused:
        return refused
    return _store_unique(ctx, root, data["code"], lambda: DiscountCode(
        id=ctx.store.new_id(), code_id=ctx.store.new_id(), title=data["title"], code=data["code"].strip(),
        starts_at=starts or ctx.now, ends_at=ends, usage_limit=data.get("usageLimit"),
        applies_once_per_customer=bool(data.get("appliesOncePerCustomer")),
        percentage=float(value["percentage"]) if "percentage" in value else None, amount_cents=amount,
        customer_ids=customers, created_at=ctx.now, minimum_subtotal_cents=_minimum_cents(data)))


def discount_code_free_shipping_create(_: Any, info: GraphQLResolveInfo,
                                       freeShippingCodeDiscount: dict[str, Any]  # noqa: N803
                                       ) -> dict[str, Any]:
    """Resolve ``discountCodeFreeShippingCreate`` (requires ``write_discounts``)."""
    ctx = _ctx(info)
    ctx.require("write_discounts", "discountCodeFreeShippingCreate")
    data, root = freeShippingCodeDiscount, "freeShippingCodeDiscount"
    existing = {d.code.lower() for d in ctx.state.discounts.values()}
    errors = validate_free_shipping_input(data, existing)
    starts, ends = _dates(root, data, errors)
    if errors:
        return {"codeDiscountNode": None, "userErrors": errors}
    cap = data.get("maximumShippingPrice")
    try:
        cap_cents = None if cap is None else int(Decimal(str(cap)) * 100)
    except InvalidOperation:
        return _error(root, ["maximumShippingPrice"], "Maximum shipping price is invalid", "INVALID")
    customers, refused = _customers(ctx, root, data)
    if refused:
        return refused
    chosen = data["destination"].get("countries")
    return _store_unique(ctx, root, data["code"], lambda: DiscountCode(
        id=ctx.store.new_id(), code_id=ctx.store.new_id(), title=data["title"], code=data["code"].strip(),
        starts_at=starts or ctx.now, ends_at=ends, usage_limit=data.get("usageLimit"),
        applies_once_per_customer=bool(data.get("appliesOncePerCustomer")), percentage=None, amount_cents=None,
        customer_ids=customers, created_at=ctx.now, minimum_subtotal_cents=_minimum_cents(data), free_shipping=True,
        countries=None if chosen is None else tuple(chosen.get("add") or ()),
        include_rest_of_world=bool(chosen and chosen.get("includeRestOfWorld")), maximum_shipping_cents=cap_cents))


def webhook_subscription_create(_: Any, info: GraphQLResolveInfo, topic: str,
                                webhookSubscription: dict[str, Any]) -> dict[str, Any]:  # noqa: N803
    """Resolve ``webhookSubscriptionCreate`` (HTTP endpoints only)."""
    ctx = _ctx(info)
    url = webhookSubscription.get("callbackUrl")
    parsed = urlparse(url or "")
    if parsed.scheme not in ("https", "http") or not parsed.netloc:
        return {"webhookSubscription": None,
                "userErrors": [{"field": ["webhookSubscription", "callbackUrl"], "message": "Address is invalid"}]}
    name = enum_to_topic(topic)
    with ctx.world.lock:
        for sub in ctx.state.subscriptions.values():
            if sub.client_id == ctx.app.client_id and sub.topic == name and sub.callback_url == url:
                return {"webhookSubscription": None, "userErrors": [{
                    "field": ["webhookSubscription", "callbackUrl"],
                    "message": "Address for this topic has already been taken"}]}
        sub = Subscription(id=ctx.store.new_id(), client_id=ctx.app.client_id, shop=ctx.store.shop.domain,
                           topic=name, callback_url=url, created_at=ctx.now, updated_at=ctx.now,
                           include_fields=tuple(webhookSubscription.get("includeFields") or ()),
                           filter=webhookSubscription.get("filter"))
        ctx.state.subscriptions[sub.id] = sub
    return {"webhookSubscription": sub, "userErrors": []}


def webhook_subscription_delete(_: Any, info: GraphQLResolveInfo, id: str) -> dict[str, Any]:  # noqa: A002
    """Resolve ``webhookSubscriptionDelete``."""
    ctx = _ctx(info)
    parsed = parse_gid(id)
    with ctx.world.lock:
        sub = ctx.state.subscriptions.get(parsed[1]) if parsed and parsed[0] == "WebhookSubscription" else None
        if sub is None or sub.client_id != ctx.app.client_id:
            return {"deletedWebhookSubscriptionId": None,
                    "userErrors": [{"field": ["id"], "message": "Webhook subscription does not exist"}]}
        del ctx.state.subscriptions[sub.id]
    return {"deletedWebhookSubscriptionId": id, "userErrors": []}


def _tagged_customer(ctx: Context, id_: str, tags: list[str]) -> tuple[Any, list[dict[str, Any]]]:
    parsed = parse_gid(id_)
    if parsed is None or parsed[0] != "Customer" or parsed[1] not in ctx.store.customers_by_id:
        return None, [{"field": ["id"], "message": "Resource does not exist"}]
    if any(len(t.strip()) > 255 for t in tags):
        return None, [{"field": ["tags"], "message": "Tags are too long (maximum is 255 characters)"}]
    return ctx.store.customers_by_id[parsed[1]], []


def tags_add(_: Any, info: GraphQLResolveInfo, id: str, tags: list[str]) -> dict[str, Any]:  # noqa: A002
    """Resolve ``tagsAdd`` on a customer (requires ``write_customers``); adding a tag it has is a no-op.

    https://shopify.dev/docs/api/admin-graphql/2025-01/mutations/tagsAdd
    """
    ctx = _ctx(info)
    ctx.require("write_customers", "tagsAdd")
    customer, errors = _tagged_customer(ctx, id, tags)
    if errors:
        return {"node": None, "userErrors": errors}
    with ctx.world.lock:
        have = list(customer.tags)
        lowered = {t.lower() for t in have}
        added = [t.strip() for t in tags if t.strip() and t.strip().lower() not in lowered]
        if added:
            customer.tags = tuple(have + added)
            customer.updated_at = ctx.now
    return {"node": customer, "userErrors": []}


def tags_remove(_: Any, info: GraphQLResolveInfo, id: str, tags: list[str]) -> dict[str, Any]:  # noqa: A002
    """Resolve ``tagsRemove`` on a customer (requires ``write_customers``); removing an absent tag is a no-op.

    https://shopify.dev/docs/api/admin-graphql/2025-01/mutations/tagsRemove
    """
    ctx = _ctx(info)
    ctx.require("write_customers", "tagsRemove")
    customer, errors = _tagged_customer(ctx, id, tags)
    if errors:
        return {"node": None, "userErrors": errors}
    gone = {t.strip().lower() for t in tags}
    with ctx.world.lock:
        kept = tuple(t for t in customer.tags if t.lower() not in gone)
        if kept != tuple(customer.tags):
            customer.tags = kept
            customer.updated_at = ctx.now
    return {"node": customer, "userErrors": []}


MUTATIONS = {
    "bulkOperationRunQuery": bulk_operation_run_query,
    "discountCodeBasicCreate": discount_code_basic_create,
    "discountCodeFreeShippingCreate": discount_code_free_shipping_create,
    "webhookSubscriptionCreate": webhook_subscription_create,
    "webhookSubscriptionDelete": webhook_subscription_delete,
    "tagsAdd": tags_add,
    "tagsRemove": tags_remove,
}
