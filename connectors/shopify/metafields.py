"""One named customer metafield, read for many customers at once (the merchant's birthday field)."""

from __future__ import annotations

from collections.abc import Sequence

from connectors.shopify import queries
from connectors.shopify.client import ShopifyClient
from connectors.shopify.parse import to_gid


def customer_metafields(client: ShopifyClient, customer_external_ids: Sequence[str], namespace: str | None,
                        key: str) -> dict[str, tuple[str, str]]:
    """Return {customer external id: (type, value)} of one metafield for up to 250 customers (absent: left out).

    https://shopify.dev/docs/api/admin-graphql/2025-01/objects/Customer#field-metafield — ``nodes`` takes at
    most 250 ids; a customer deleted meanwhile comes back as null.
    """
    if len(customer_external_ids) > 250:
        raise ValueError("at most 250 customers per call")
    answer = client.execute(queries.CUSTOMER_METAFIELD, {
        "ids": [to_gid("Customer", i) for i in customer_external_ids], "namespace": namespace, "key": key})
    found: dict[str, tuple[str, str]] = {}
    for node in answer.get("nodes") or []:
        field = (node or {}).get("metafield")
        if field and field.get("value") is not None:
            found[node["id"].rsplit("/", 1)[-1]] = (str(field.get("type") or ""), str(field["value"]))
    return found
