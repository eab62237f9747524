"""The columns an order record fills: the order's and its lines' (both write paths use the same lists)."""

from __future__ import annotations

from typing import Any

from connectors.records import OrderRecord

ORDER_FIELDS = ("name", "customer_id", "created_at_remote", "processed_at", "remote_updated_at", "currency",
                "total_price", "subtotal_price", "total_refunded", "financial_status", "fulfillment_status",
                "cancelled_at", "cancel_reason", "refunded", "returned", "fulfilled_at", "estimated_delivery_at",
                "delivered_at",
                "earliest_delivery_at", "latest_delivery_at", "latest_ship_at", "fulfillment_channel", "marketplace_id",
                "tags")
LINE_FIELDS = ("product_id", "variant_id", "sku", "title", "quantity", "price")


def order_row(store_id: int, record: OrderRecord, customer_id: int | None) -> dict[str, Any]:
    """Return the ``orders`` row of a record (without its lines)."""
    return {
        "store_id": store_id, "external_id": record.external_id, "name": record.name, "customer_id": customer_id,
        "created_at_remote": record.created_at, "processed_at": record.processed_at,
        "remote_updated_at": record.updated_at, "currency": record.currency, "total_price": record.total_price,
        "subtotal_price": record.subtotal_price, "total_refunded": record.total_refunded,
        "financial_status": record.financial_status, "fulfillment_status": record.fulfillment_status,
        "cancelled_at": record.cancelled_at, "cancel_reason": record.cancel_reason,
        "refunded": record.refunded, "returned": record.returned,
        "fulfilled_at": record.fulfilled_at, "estimated_delivery_at": record.estimated_delivery_at,
        "delivered_at": record.delivered_at, "earliest_delivery_at": record.earliest_delivery_at,
        "latest_delivery_at": record.latest_delivery_at, "latest_ship_at": record.latest_ship_at,
        "fulfillment_channel": record.fulfillment_channel,
        "marketplace_id": record.marketplace_id, "tags": list(record.tags),
    }
