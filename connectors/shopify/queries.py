# ruff: noqa: UP031
# (GraphQL documents are full of braces: %-formatting keeps them readable, str.format would double them all.)
"""Every GraphQL document the Shopify connector sends (Admin API 2025-01), in one place.

A test validates each of ``ALL_DOCUMENTS`` against Shopify's official schema, so nothing the connector can
send is unchecked. Documents are built from shared field lists rather than named fragments because bulk
queries are easier to reason about (and to reassemble) without spreads.

Costs: https://shopify.dev/docs/api/usage/limits#cost-calculation — a connection costs 2 plus its page size
times one node, an object 1; a single query may cost at most 1000, hence the modest page sizes below.
"""

from __future__ import annotations

CUSTOMER_FIELDS = """id firstName email locale tags createdAt updatedAt
emailMarketingConsent { marketingState consentUpdatedAt }
defaultAddress { countryCodeV2 timeZone }"""

LINE_ITEM_FIELDS = """id quantity sku title
variant { id }
product { id }
originalUnitPriceSet { shopMoney { amount } }"""

# One parcel: its tracking (the first number; Shopify lists several only for split carrier labels).
FULFILLMENT_FIELDS = """id name status createdAt updatedAt deliveredAt estimatedDeliveryAt
trackingInfo(first: 1) { company number url }"""
FULFILLMENT_EVENT_FIELDS = "id status happenedAt estimatedDeliveryAt city province country message"
FULFILLMENT_EVENTS_PAGE = 50

# Shop money everywhere: the order's currency column is the shop currency (presentment money is the buyer's).
ORDER_FIELDS = """id name createdAt processedAt updatedAt cancelledAt cancelReason currencyCode tags
displayFinancialStatus displayFulfillmentStatus returnStatus
totalPriceSet { shopMoney { amount } }
subtotalPriceSet { shopMoney { amount } }
totalRefundedSet { shopMoney { amount } }
fulfillments(first: 5) { %s }
customer { %s }""" % (FULFILLMENT_FIELDS, CUSTOMER_FIELDS)

# featuredMedia, not the deprecated featuredImage; the preview image of any media kind is an image with alt text.
PRODUCT_FIELDS = """id title handle productType vendor status tags updatedAt totalInventory tracksInventory
featuredMedia { alt preview { image { url altText } } }"""
VARIANT_FIELDS = "id sku title price"

ORDER_LINES_PAGE = 10
ORDERS_PAGE = 13
CUSTOMERS_PAGE = 250
PRODUCT_VARIANTS_PAGE = 20
PRODUCTS_PAGE = 38
NESTED_PAGE = 100

ORDERS = """query Orders($first: Int!, $after: String, $query: String) {
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes {
      %s
      lineItems(first: %d) { pageInfo { hasNextPage endCursor } nodes { %s } }
    }
  }
}""" % (ORDER_FIELDS, ORDER_LINES_PAGE, LINE_ITEM_FIELDS)

ORDER_LINE_ITEMS = """query OrderLineItems($id: ID!, $after: String) {
  order(id: $id) {
    lineItems(first: %d, after: $after) { pageInfo { hasNextPage endCursor } nodes { %s } }
  }
}""" % (NESTED_PAGE, LINE_ITEM_FIELDS)

ORDERS_BY_ID = """query OrdersById($ids: [ID!]!) {
  nodes(ids: $ids) {
    ... on Order {
      %s
      lineItems(first: %d) { pageInfo { hasNextPage endCursor } nodes { %s } }
    }
  }
}""" % (ORDER_FIELDS, ORDER_LINES_PAGE, LINE_ITEM_FIELDS)
ORDERS_BY_ID_PAGE = 13

CUSTOMERS = """query Customers($first: Int!, $after: String, $query: String) {
  customers(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes { %s }
  }
}""" % CUSTOMER_FIELDS

PRODUCTS = """query Products($first: Int!, $after: String, $query: String) {
  products(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes {
      %s
      variants(first: %d) { pageInfo { hasNextPage endCursor } nodes { %s } }
    }
  }
}""" % (PRODUCT_FIELDS, PRODUCT_VARIANTS_PAGE, VARIANT_FIELDS)

PRODUCTS_BY_ID = """query ProductsById($ids: [ID!]!) {
  nodes(ids: $ids) {
    ... on Product {
      %s
      variants(first: %d) { pageInfo { hasNextPage endCursor } nodes { %s } }
    }
  }
}""" % (PRODUCT_FIELDS, PRODUCT_VARIANTS_PAGE, VARIANT_FIELDS)
PRODUCTS_BY_ID_PAGE = 38

# The carrier milestones of one parcel, oldest first
# (https://shopify.dev/docs/api/admin-graphql/2025-01/objects/Fulfillment#field-events).
FULFILLMENT_EVENTS = """query FulfillmentEvents($id: ID!, $after: String) {
  fulfillment(id: $id) {
    %s
    events(first: %d, after: $after, sortKey: HAPPENED_AT) {
      pageInfo { hasNextPage endCursor }
      nodes { %s }
    }
  }
}""" % (FULFILLMENT_FIELDS, FULFILLMENT_EVENTS_PAGE, FULFILLMENT_EVENT_FIELDS)

PRODUCT_VARIANTS = """query ProductVariants($id: ID!, $after: String) {
  product(id: $id) {
    variants(first: %d, after: $after) { pageInfo { hasNextPage endCursor } nodes { %s } }
  }
}""" % (NESTED_PAGE, VARIANT_FIELDS)

# The shop's collections with their products' ids (custom and smart alike: Collection.products is the membership).
# Cost per page: 2 + COLLECTIONS_PAGE x (1 + 2 + COLLECTION_PRODUCTS_PAGE) = 2 + 5 x 103 = 517 of the 1000 allowed.
COLLECTION_FIELDS = "id title handle updatedAt"
COLLECTIONS_PAGE = 5
COLLECTION_PRODUCTS_PAGE = 100

COLLECTIONS = """query Collections($first: Int!, $after: String, $productsFirst: Int!) {
  collections(first: $first, after: $after, sortKey: ID) {
    pageInfo { hasNextPage endCursor }
    nodes {
      %s
      products(first: $productsFirst) { pageInfo { hasNextPage endCursor } nodes { id } }
    }
  }
}""" % COLLECTION_FIELDS

COLLECTION_PRODUCTS = """query CollectionProducts($id: ID!, $first: Int!, $after: String) {
  node(id: $id) {
    ... on Collection {
      products(first: $first, after: $after) { pageInfo { hasNextPage endCursor } nodes { id } }
    }
  }
}"""


def _bulk(root: str, fields: str, search: str | None, child: str = "") -> str:
    """Return a bulk query over ``root`` (optionally filtered by a search string) with one nested connection."""
    args = f'(query: "{search}")' if search else ""
    return "{ %s%s { edges { node { %s %s } } } }" % (root, args, fields, child)


def bulk_orders(search: str | None = None) -> str:
    """Return the bulk query for orders with their line items (JSONL children carry ``__parentId``)."""
    return _bulk("orders", ORDER_FIELDS, search, "lineItems { edges { node { %s } } }" % LINE_ITEM_FIELDS)


def bulk_customers(search: str | None = None) -> str:
    """Return the bulk query for customers."""
    return _bulk("customers", CUSTOMER_FIELDS, search)


def bulk_products(search: str | None = None) -> str:
    """Return the bulk query for products with their variants."""
    return _bulk("products", PRODUCT_FIELDS, search, "variants { edges { node { %s } } }" % VARIANT_FIELDS)


BULK_OPERATION_FIELDS = "id status errorCode createdAt completedAt objectCount rootObjectCount url partialDataUrl"

BULK_RUN = """mutation BulkRun($query: String!) {
  bulkOperationRunQuery(query: $query) {
    bulkOperation { %s }
    userErrors { field message code }
  }
}""" % BULK_OPERATION_FIELDS

BULK_BY_ID = """query BulkOperation($id: ID!) {
  node(id: $id) { ... on BulkOperation { %s } }
}""" % BULK_OPERATION_FIELDS

BULK_CURRENT = """query CurrentBulkOperation {
  currentBulkOperation { %s }
}""" % BULK_OPERATION_FIELDS

DISCOUNT_CODE_CREATE = """mutation DiscountCodeCreate($input: DiscountCodeBasicInput!) {
  discountCodeBasicCreate(basicCodeDiscount: $input) {
    codeDiscountNode {
      id
      codeDiscount {
        ... on DiscountCodeBasic {
          title status startsAt endsAt usageLimit appliesOncePerCustomer
          codes(first: 1) { nodes { code } }
        }
      }
    }
    userErrors { field message code extraInfo }
  }
}"""

FREE_SHIPPING_CODE_CREATE = """mutation FreeShippingCodeCreate($input: DiscountCodeFreeShippingInput!) {
  discountCodeFreeShippingCreate(freeShippingCodeDiscount: $input) {
    codeDiscountNode {
      id
      codeDiscount {
        ... on DiscountCodeFreeShipping {
          title status startsAt endsAt usageLimit appliesOncePerCustomer
          codes(first: 1) { nodes { code } }
        }
      }
    }
    userErrors { field message code extraInfo }
  }
}"""

# One named metafield of up to 250 customers (the merchant's birthday field); namespace and key are variables.
CUSTOMER_METAFIELD = """query CustomerMetafield($ids: [ID!]!, $namespace: String, $key: String!) {
  nodes(ids: $ids) { ... on Customer { id metafield(namespace: $namespace, key: $key) { type value } } }
}"""

# https://shopify.dev/docs/api/admin-graphql/2025-01/mutations/tagsAdd (and tagsRemove): the VIP tag on a customer.
TAGS_ADD = """mutation TagsAdd($id: ID!, $tags: [String!]!) {
  tagsAdd(id: $id, tags: $tags) { node { id } userErrors { field message } }
}"""
TAGS_REMOVE = """mutation TagsRemove($id: ID!, $tags: [String!]!) {
  tagsRemove(id: $id, tags: $tags) { node { id } userErrors { field message } }
}"""

# The billing address is the default of the postal address every commercial email carries (CAN-SPAM).
SHOP_ADDRESS_FIELDS = "billingAddress { countryCodeV2 formatted(withCompany: true) }"
# The refund policy the tracking page shows (https://shopify.dev/docs/api/admin-graphql/2025-01/objects/ShopPolicy).
SHOP_POLICY_FIELDS = "shopPolicies { type title body url }"
SHOP = """query Shop {
  shop { name myshopifyDomain currencyCode ianaTimezone %s %s }
}""" % (SHOP_ADDRESS_FIELDS, SHOP_POLICY_FIELDS)

# The shop's contact address and legal policies (connectors.shopify.policies); bodies are HTML.
SHOP_POLICIES = """query ShopPolicies {
  shop { contactEmail shopPolicies { type title body url } }
}"""

SEARCH_EXAMPLE = "updated_at:>='2026-01-01T00:00:00Z'"

# Every document the connector can send; bulk queries are shown with and without a search filter.
ALL_DOCUMENTS: dict[str, str] = {
    "shop_policies": SHOP_POLICIES,
    "orders": ORDERS,
    "order_line_items": ORDER_LINE_ITEMS,
    "orders_by_id": ORDERS_BY_ID,
    "customers": CUSTOMERS,
    "products": PRODUCTS,
    "product_variants": PRODUCT_VARIANTS,
    "fulfillment_events": FULFILLMENT_EVENTS,
    "products_by_id": PRODUCTS_BY_ID,
    "collections": COLLECTIONS,
    "collection_products": COLLECTION_PRODUCTS,
    "bulk_run": BULK_RUN,
    "bulk_by_id": BULK_BY_ID,
    "bulk_current": BULK_CURRENT,
    "discount_code_create": DISCOUNT_CODE_CREATE,
    "free_shipping_code_create": FREE_SHIPPING_CODE_CREATE,
    "customer_metafield": CUSTOMER_METAFIELD,
    "tags_add": TAGS_ADD,
    "tags_remove": TAGS_REMOVE,
    "shop": SHOP,
    "bulk_orders": bulk_orders(),
    "bulk_orders_since": bulk_orders(SEARCH_EXAMPLE),
    "bulk_customers": bulk_customers(),
    "bulk_customers_since": bulk_customers(SEARCH_EXAMPLE),
    "bulk_products": bulk_products(),
    "bulk_products_since": bulk_products(SEARCH_EXAMPLE),
}
