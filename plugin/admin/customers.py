"""Customers: segment, orders, predicted next order per product, consent, manual suppression, data deletion."""

from __future__ import annotations

from typing import Any

from flask import abort, request
from sqlalchemy import delete, func, or_, select

from plugin import flow_settings, get_clock, get_config
from plugin.admin.blueprint import PAGE_SIZE, bp, ctx, done, failed, get_scoped, page
from plugin.admin.overview import SEGMENT_NAMES, overview_cache
from plugin.db import get_session
from plugin.flows import replenishment
from plugin.flows.replenishment_plan import customer_plan
from plugin.messaging.suppression import normalize
from plugin.messaging.withdrawals import unsubscribe_address
from plugin.models import Customer, CustomerMetrics, Order, Product, Store, Suppression
from plugin.webhooks.compliance import redact_customer


@bp.get("/customers")
def customers() -> Any:
    """List customers with their metrics (newest first, keyset pages), by segment or search."""
    context = ctx()
    segment = request.args.get("segment") or None
    q = (request.args.get("q") or "").strip()
    before = request.args.get("before", "")
    query = (select(Customer, CustomerMetrics)
             .outerjoin(CustomerMetrics, CustomerMetrics.customer_id == Customer.id)
             .where(Customer.store_id.in_(context.scope_ids)))
    # With a segment, walk the (store_id, segment) index of customer_metrics in customer id order.
    key = Customer.id
    if segment in SEGMENT_NAMES:
        query = query.where(CustomerMetrics.store_id.in_(context.scope_ids), CustomerMetrics.segment == segment)
        key = CustomerMetrics.customer_id
    if q:
        query = query.where(_matches(q))
    if before:
        if not before.isdigit():
            abort(400)
        query = query.where(key < int(before))
    rows = get_session().execute(query.order_by(key.desc()).limit(PAGE_SIZE + 1)).all()
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    return page("admin/customers.html", rows=rows, more=more, next_before=rows[-1][0].id if rows else None,
                segment=segment, q=q, segment_names=SEGMENT_NAMES)


def _matches(q: str) -> Any:
    """Return the filter for a customer search: exact email or id (indexed), else part of a name or email.

    The part search scans the store's customers newest first and stops at a page of matches; at 250,000
    customers a search matching nobody costs one full scan (bench/admin.py times it).
    """
    if "@" in q and " " not in q and q.count("@") == 1 and "." in q.rsplit("@", 1)[1]:
        return Customer.email.in_({q, q.lower()})
    if q.isdigit() or q.startswith("gid://"):
        return or_(Customer.external_id == q, Customer.external_id == f"gid://shopify/Customer/{q}")
    needle = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return or_(func.lower(Customer.first_name).like(f"%{needle}%", escape="\\"),
               func.lower(Customer.email).like(f"%{needle}%", escape="\\"))


def predicted_by_product(customer: Customer, settings: dict[str, Any], now: Any) -> list[dict[str, Any]]:
    """Plan each consumable product the customer bought: predicted run-out, reminder, probability and reason.

    The replenishment flow's stored plans (plugin.flows.replenishment_plan.customer_plan), scored now as the hourly
    run scores them: the customer's own gaps shrunk toward the product's, scaled by the quantity bought, the
    predicted run-out, the probability that they reorder in the reminder's window, and whether it clears the floor.
    """
    session = get_session()
    plans = customer_plan(session, customer.store_id, customer.id, settings, now)
    if not plans:
        return []
    products = {p.id: p for p in session.scalars(select(Product).where(Product.id.in_([r["product_id"]
                                                                                      for r in plans])))}
    return [{**r, "product": products[r["product_id"]]} for r in plans]


@bp.get("/customers/<int:customer_id>")
def customer_detail(customer_id: int) -> Any:
    """Show one customer: segment and scores, orders, predicted re-orders, consent and suppression."""
    customer = get_scoped(Customer, customer_id)
    session = get_session()
    metrics = session.get(CustomerMetrics, customer.id)
    orders = list(session.scalars(select(Order).where(Order.customer_id == customer.id,
                                                      Order.store_id == customer.store_id)
                                  .order_by(Order.created_at_remote.desc()).limit(PAGE_SIZE)))
    suppression = session.scalar(select(Suppression).where(
        Suppression.store_id == customer.store_id, Suppression.email == normalize(customer.email))) \
        if customer.email else None
    store = session.get(Store, customer.store_id)
    settings = replenishment.FLOW.settings.load(flow_settings.effective(session, get_config(), customer.store_id,
                                                                        replenishment.FLOW.settings_section))
    return page("admin/customer.html", customer=customer, metrics=metrics, orders=orders, store=store,
                suppression=suppression, predictions=predicted_by_product(customer, settings, get_clock().now()),
                settings_floor=settings["min_probability"],
                segment_names=SEGMENT_NAMES)


@bp.post("/customers/<int:customer_id>/suppression")
def change_suppression(customer_id: int) -> Any:
    """Add or remove a manual suppression of the customer's address (other reasons cannot be lifted here)."""
    customer = get_scoped(Customer, customer_id)
    if not customer.email:
        return failed("This customer has no email address.")
    session = get_session()
    now = get_clock().now()
    if request.form.get("action") == "remove":
        row = session.scalar(select(Suppression).where(Suppression.store_id == customer.store_id,
                                                       Suppression.email == normalize(customer.email)))
        if row is None:
            return failed("The address is not suppressed.")
        if row.reason != "manual":
            return failed(f"Only manual suppressions can be lifted; this one is a {row.reason}.")
        session.execute(delete(Suppression).where(Suppression.id == row.id))
        return done("admin.customer_detail", "Suppression removed.", customer_id=customer.id)
    unsubscribe_address(session, customer.store_id, customer.email, "manual", now,
                        detail=request.form.get("detail") or None, customer_id=customer.id)
    return done("admin.customer_detail", "Address suppressed: no flow will email it.", customer_id=customer.id)


@bp.post("/customers/<int:customer_id>/delete")
def delete_customer_data(customer_id: int) -> Any:
    """Erase a customer's personal data with the compliance redaction (as customers/redact does)."""
    customer = get_scoped(Customer, customer_id)
    if request.form.get("confirm") != "erase":
        return failed("Type erase to confirm.")
    session = get_session()
    store = session.get(Store, customer.store_id)
    payload = {"customer": {"id": customer.external_id, "email": customer.email}, "orders_to_redact": []}
    redact_customer(session, store, store.external_id, payload, get_clock().now())
    overview_cache().drop_merchant(ctx().merchant_id)
    return done("admin.customer_detail", "The customer's personal data was erased.", customer_id=customer.id)
