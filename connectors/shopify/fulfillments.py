"""One parcel's tracking and carrier milestones, read from the Admin API (``fulfillment(id:)`` and its ``events``).

https://shopify.dev/docs/api/admin-graphql/2025-01/objects/Fulfillment#field-events — events come oldest first
(``sortKey: HAPPENED_AT``), paged by cursor.
"""

from __future__ import annotations

from connectors.records import FulfillmentEventRecord, FulfillmentRecord
from connectors.shopify import queries
from connectors.shopify.client import ShopifyClient
from connectors.shopify.parse import fulfillment_event_record, fulfillment_record, numeric_id

# A page: 2 for the connection plus one per event, the fulfilment and its tracking.
_PAGE_COST = 2 + queries.FULFILLMENT_EVENTS_PAGE + 3


def fetch_fulfillment_events(client: ShopifyClient, fulfillment_gid: str
                             ) -> tuple[FulfillmentRecord, list[FulfillmentEventRecord]] | None:
    """Return a fulfilment and all its events, or None when Shopify no longer has it."""
    after: str | None = None
    parcel: FulfillmentRecord | None = None
    events: list[FulfillmentEventRecord] = []
    while True:
        data = client.execute(queries.FULFILLMENT_EVENTS, {"id": fulfillment_gid, "after": after},
                              estimated_cost=_PAGE_COST).get("fulfillment")
        if data is None:
            return None
        parcel = parcel or fulfillment_record(data)
        fulfillment_id = numeric_id(data.get("id")) or ""
        connection = data.get("events") or {}
        events.extend(fulfillment_event_record(fulfillment_id, node) for node in connection.get("nodes") or ())
        page = connection.get("pageInfo") or {}
        if not page.get("hasNextPage"):
            return parcel, events
        after = page.get("endCursor")
