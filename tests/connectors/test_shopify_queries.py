"""Every GraphQL document the Shopify connector can send is valid against Shopify's official Admin schema
(2025-01) and stays under Shopify's single-query cost limit of 1000."""

from __future__ import annotations

import gzip
import json

import pytest
from graphql import GraphQLSchema, build_client_schema, get_operation_ast, parse, validate

from connectors.shopify import queries
from sandbox.shopify.cost import CostCalculator
from sandbox.shopify.schema import load_schema
from tests.paths import SHOPIFY_SCHEMA

MAX_QUERY_COST = 1000  # https://shopify.dev/docs/api/usage/limits#graphql-admin-api-rate-limits


@pytest.fixture(scope="module")
def official_schema() -> GraphQLSchema:
    if not SHOPIFY_SCHEMA.exists():
        pytest.fail(f"official Shopify schema missing at {SHOPIFY_SCHEMA}")
    with gzip.open(SHOPIFY_SCHEMA) as fh:
        schema = build_client_schema(json.load(fh)["data"])
    # graphql-core flags Shopify's deprecated interface implementations; skip that schema self-check
    # (see ../shared/specs/shopify/README.md).
    schema._validation_errors = []
    return schema


def test_the_connector_declares_every_document_it_sends():
    names = set(queries.ALL_DOCUMENTS)
    assert {"orders", "order_line_items", "orders_by_id", "customers", "products", "product_variants",
            "products_by_id", "bulk_run", "bulk_by_id", "bulk_current", "discount_code_create", "shop",
            "bulk_orders", "bulk_customers", "bulk_products", "free_shipping_code_create"} <= names


@pytest.mark.parametrize("name", sorted(queries.ALL_DOCUMENTS))
def test_document_is_valid_against_the_official_schema(official_schema, name):
    errors = validate(official_schema, parse(queries.ALL_DOCUMENTS[name]))
    assert [e.message for e in errors] == []


@pytest.mark.parametrize("name", sorted(queries.ALL_DOCUMENTS))
def test_document_costs_at_most_the_single_query_limit(name):
    schema = load_schema()
    document = parse(queries.ALL_DOCUMENTS[name])
    pages = {"orders": queries.ORDERS_PAGE, "customers": queries.CUSTOMERS_PAGE, "products": queries.PRODUCTS_PAGE}
    ids = {"orders_by_id": queries.ORDERS_BY_ID_PAGE, "products_by_id": queries.PRODUCTS_BY_ID_PAGE}
    variables = {"first": pages.get(name, 1), "ids": ["gid://shopify/Order/1"] * ids.get(name, 1)}
    cost = CostCalculator(schema, {}, variables).operation(get_operation_ast(document))
    assert cost <= MAX_QUERY_COST


def test_bulk_queries_embed_the_search_filter_as_a_literal():
    query = queries.bulk_orders("updated_at:>='2026-03-01T00:00:00Z'")
    assert "orders(query: \"updated_at:>='2026-03-01T00:00:00Z'\")" in query
    assert validate(load_schema(), parse(query)) == []
