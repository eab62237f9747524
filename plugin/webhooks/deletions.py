"""Deletions in Shopify (``orders/delete``, ``products/delete``, ``customers/delete``) applied to our data.

The bodies carry only the id (https://shopify.dev/docs/api/webhooks?reference=toml, topics ORDERS_DELETE,
PRODUCTS_DELETE, CUSTOMERS_DELETE): the object is gone from Shopify, and the GraphQL sync cannot see that
(it only lists what exists), so these webhooks are the one way a deletion reaches us. What still waits to
be sent about the deleted object is cancelled with a reason; what was sent stays in the message log, its
reference cleared by the foreign key (``ON DELETE SET NULL``).

Deleted orders and products leave a tombstone (``deleted_record``): Shopify retries a failed delivery for
up to 48 hours and does not promise order, so an ``orders/updated`` sent before the deletion can arrive
after it; ``plugin.sync.orders``, the owner of order rows, drops such a late copy (also one read from a bulk
file or page fetched just before the deletion). Customers need none (the erased
row stays, see ``delete_customer``). https://shopify.dev/docs/apps/build/webhooks/ignore-duplicates
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from plugin.flows.replenishment_plan import recompute_customers
from plugin.messaging import outbox
from plugin.models import Customer, Message, PurchaseCycle, PurchaseGap, Store
from plugin.sync import orders, products
from plugin.webhooks.compliance import erase_customer_fields

log = logging.getLogger("aftercare.webhooks")

ORDER_DELETED = "order_deleted"
PRODUCT_DELETED = "product_deleted"
CUSTOMER_DELETED = "customer_deleted"


def delete_order(session: Session, store: Store, external_id: str, now: datetime) -> str:
    """Remove a deleted order with its lines and cancel its scheduled messages; return the outcome.

    Messages already sent (or failed, skipped) keep their row with ``order_id`` cleared by the foreign key,
    as do reviews, tickets and survey answers that pointed at the order: they are the store's history.
    """
    order = orders.tombstone_order(session, store.id, external_id, now)
    if order is None:
        return "order unknown"
    order_id, customer_id = order
    cancelled = outbox.cancel(session, store.id, ORDER_DELETED, now, Message.order_id == order_id)
    orders.delete_order(session, order_id)
    if customer_id is not None:  # the replenishment planner cannot see a row that is gone: told here
        recompute_customers(session, store.id, [customer_id])
    log.info("order deleted in Shopify", extra={"store_id": store.id, "order_id": order_id, "cancelled": cancelled})
    return "deleted"


def delete_product(session: Session, store: Store, external_id: str, now: datetime) -> str:
    """Remove a deleted product with its variants and cancel the reminders about it; return the outcome.

    Order lines stay (quantity, price, title and SKU are copies on the line), with ``product_id`` and
    ``variant_id`` cleared: the sales history and the customers' own re-buy gaps remain, but no flow can
    plan a reminder for a product the store no longer sells. Sent reminders keep their row.
    """
    product_id = products.tombstone_product(session, store.id, external_id, now)
    if product_id is None:
        return "product unknown"
    cancelled = outbox.cancel(session, store.id, PRODUCT_DELETED, now, Message.product_id == product_id)
    for derived in (PurchaseCycle, PurchaseGap):  # the replenishment planner's rows about it
        session.execute(delete(derived).where(derived.store_id == store.id, derived.product_id == product_id))
    products.delete_product(session, product_id)
    log.info("product deleted in Shopify", extra={"store_id": store.id, "product_id": product_id,
                                                   "cancelled": cancelled})
    return "deleted"


def delete_customer(session: Session, store: Store, external_id: str, now: datetime) -> str:
    """Erase a customer the merchant deleted in Shopify, keeping an empty tombstone row; return the outcome.

    Why erase: DESIGN §1 keeps only the personal data a flow needs, and no flow may write to someone who
    is no longer the store's customer, so their scheduled messages are cancelled and their contact data
    (the customer row's, and the address/subject/payload copies in their messages) is cleared as
    ``customers/redact`` does.

    Why not everything ``customers/redact`` does: deleting a record is the merchant's housekeeping (a
    duplicate, a test account), not the person asking to be forgotten. So no suppression is added (the
    address may come back as another customer and must not be silenced by this), existing suppressions
    (unsubscribes, bounces) stay as they are, and reviews, tickets and survey comments — the store's own
    records — are not rewritten.

    Why a tombstone and not a DELETE: the row keeps ``redacted_at``, which every upsert respects, so a
    late or retried ``customers/update`` or order body cannot bring the data back; orders (Shopify only
    deletes customers without orders, but ours may lag) stay linked for the analytics.
    """
    customer = session.scalar(select(Customer).where(Customer.store_id == store.id,
                                                     Customer.external_id == external_id))
    if customer is None:
        return "customer unknown"
    mine = Message.customer_id == customer.id
    cancelled = outbox.cancel(session, store.id, CUSTOMER_DELETED, now, mine)
    session.execute(update(Message).where(Message.store_id == store.id, mine)
                    .values(to_address=None, subject=None, payload={})
                    .execution_options(synchronize_session=False))
    # The fields customers/redact clears; the id stays as the tombstone.
    erase_customer_fields(customer, now)
    # As for customers/redact: no replenishment state for someone who can never be written to.
    session.execute(delete(PurchaseCycle).where(PurchaseCycle.customer_id == customer.id))
    session.flush()
    log.info("customer deleted in Shopify", extra={"store_id": store.id, "customer_id": customer.id,
                                                    "cancelled": cancelled})
    return "deleted"
