"""The sandbox's SDL is a faithful subset of Shopify's official Admin GraphQL schema (2025-01).

Every type, field, argument (with default), input field, enum value, union member and interface in
``sandbox/shopify/schema.graphql`` must exist in the official introspection with the same type, and the
official schema's required arguments/input fields must all be present, so a document valid for the
sandbox is valid for Shopify.
"""

from __future__ import annotations

import gzip
import json

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    build_client_schema,
    parse,
    validate,
)
from graphql.utilities.print_schema import print_input_value

from sandbox.shopify.schema import load_schema
from tests.paths import SHOPIFY_SCHEMA

BUILTIN = {"String", "Int", "Float", "Boolean", "ID"}


@pytest.fixture(scope="module")
def official() -> GraphQLSchema:
    """Load the official introspection (graphql-core reports two harmless deprecation errors; skip them)."""
    if not SHOPIFY_SCHEMA.exists():
        pytest.fail(f"official Shopify schema missing at {SHOPIFY_SCHEMA}")
    with gzip.open(SHOPIFY_SCHEMA) as fh:
        schema = build_client_schema(json.load(fh)["data"])
    schema._validation_errors = []  # see ../shared/specs/shopify/README.md
    return schema


@pytest.fixture(scope="module")
def ours() -> GraphQLSchema:
    return load_schema()


def _named(schema: GraphQLSchema) -> dict:
    return {n: t for n, t in schema.type_map.items() if not n.startswith("__") and n not in BUILTIN}


def test_roots_are_shopifys(ours, official):
    assert ours.query_type.name == official.query_type.name == "QueryRoot"
    assert ours.mutation_type.name == official.mutation_type.name == "Mutation"
    assert set(ours.query_type.fields) == {"shop", "orders", "order", "customers", "customer", "products",
                                           "product", "collections", "node", "nodes", "currentBulkOperation",
                                           "webhookSubscriptions", "shopLocales", "fulfillment"}
    assert set(ours.mutation_type.fields) == {"bulkOperationRunQuery", "discountCodeBasicCreate",
                                              "discountCodeFreeShippingCreate",
                                              "webhookSubscriptionCreate", "webhookSubscriptionDelete",
                                              "tagsAdd", "tagsRemove"}


def test_every_type_exists_with_the_same_kind(ours, official):
    problems = []
    for name, ours_type in _named(ours).items():
        theirs = official.type_map.get(name)
        if theirs is None:
            problems.append(f"{name}: not in the official schema")
        elif type(theirs) is not type(ours_type):
            problems.append(f"{name}: {type(ours_type).__name__} here, {type(theirs).__name__} at Shopify")
    assert problems == []


def test_every_field_and_argument_matches(ours, official):
    problems = []
    for name, ours_type in _named(ours).items():
        theirs = official.type_map[name]
        if isinstance(ours_type, GraphQLObjectType | GraphQLInterfaceType):
            for iface in ours_type.interfaces:
                if iface.name not in {i.name for i in theirs.interfaces}:
                    problems.append(f"{name} implements {iface.name} only here")
            for fname, field in ours_type.fields.items():
                official_field = theirs.fields.get(fname)
                if official_field is None:
                    problems.append(f"{name}.{fname}: no such field")
                    continue
                if str(field.type) != str(official_field.type):
                    problems.append(f"{name}.{fname}: {field.type} here, {official_field.type} at Shopify")
                for aname, arg in field.args.items():
                    official_arg = official_field.args.get(aname)
                    if official_arg is None:
                        problems.append(f"{name}.{fname}({aname}): no such argument")
                    elif print_input_value(aname, arg) != print_input_value(aname, official_arg):
                        problems.append(f"{name}.{fname}: {print_input_value(aname, arg)} here, "
                                        f"{print_input_value(aname, official_arg)} at Shopify")
                for aname, official_arg in official_field.args.items():
                    required = isinstance(official_arg.type, GraphQLNonNull) and \
                        official_arg.default_value is None
                    if required and aname not in field.args:
                        problems.append(f"{name}.{fname}: required argument {aname} missing")
        elif isinstance(ours_type, GraphQLInputObjectType):
            for fname, field in ours_type.fields.items():
                official_field = theirs.fields.get(fname)
                if official_field is None:
                    problems.append(f"input {name}.{fname}: no such input field")
                elif print_input_value(fname, field) != print_input_value(fname, official_field):
                    problems.append(f"input {name}.{fname}: {field.type} here, {official_field.type} at Shopify")
            for fname, official_field in theirs.fields.items():
                if isinstance(official_field.type, GraphQLNonNull) and fname not in ours_type.fields:
                    problems.append(f"input {name}: required field {fname} missing")
        elif isinstance(ours_type, GraphQLEnumType):
            extra = set(ours_type.values) - set(theirs.values)
            if extra:
                problems.append(f"enum {name}: values {sorted(extra)} not at Shopify")
        elif isinstance(ours_type, GraphQLUnionType):
            extra = {t.name for t in ours_type.types} - {t.name for t in theirs.types}
            if extra:
                problems.append(f"union {name}: members {sorted(extra)} not at Shopify")
        else:
            assert isinstance(ours_type, GraphQLScalarType)
    assert problems == []


def test_no_customer_time_zone_or_default_email_invented(ours, official):
    # 2025-01 has no Customer.defaultEmailAddress and no customer time zone; only the address has timeZone.
    assert "defaultEmailAddress" not in official.type_map["Customer"].fields
    assert "defaultEmailAddress" not in ours.type_map["Customer"].fields
    assert "timeZone" not in ours.type_map["Customer"].fields
    assert str(ours.type_map["MailingAddress"].fields["timeZone"].type) == "String"


def test_every_connector_document_is_valid_for_both(ours, official):
    from connectors.shopify.queries import ALL_DOCUMENTS

    for name, document in ALL_DOCUMENTS.items():
        ast = parse(document)
        assert validate(official, ast) == [], name
        assert validate(ours, ast) == [], name
