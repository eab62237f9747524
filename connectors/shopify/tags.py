"""Customer tags through ``tagsAdd`` / ``tagsRemove``: the VIP tag the merchant's own discounts and theme read.

https://shopify.dev/docs/api/admin-graphql/2025-01/mutations/tagsAdd — adding a tag the customer already has,
or removing one they do not have, changes nothing and is no error, so a retried call is harmless. Both need the
``write_customers`` scope.
"""

from __future__ import annotations

from collections.abc import Sequence

from connectors.shopify import queries
from connectors.shopify.client import ShopifyClient
from connectors.shopify.errors import raise_user_errors
from connectors.shopify.parse import to_gid


def add_customer_tags(client: ShopifyClient, customer_external_id: str, tags: Sequence[str]) -> None:
    """Add ``tags`` to the customer (raises ShopifyUserError when Shopify refuses, e.g. an unknown customer)."""
    answer = client.execute(queries.TAGS_ADD, {"id": to_gid("Customer", customer_external_id), "tags": list(tags)})
    raise_user_errors(answer.get("tagsAdd"), "tagsAdd")


def remove_customer_tags(client: ShopifyClient, customer_external_id: str, tags: Sequence[str]) -> None:
    """Remove ``tags`` from the customer (raises ShopifyUserError when Shopify refuses)."""
    answer = client.execute(queries.TAGS_REMOVE, {"id": to_gid("Customer", customer_external_id),
                                                  "tags": list(tags)})
    raise_user_errors(answer.get("tagsRemove"), "tagsRemove")

