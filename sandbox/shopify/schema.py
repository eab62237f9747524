"""The sandbox's own Admin GraphQL schema, read from ``schema.graphql`` beside this module."""

from __future__ import annotations

from pathlib import Path

from graphql import GraphQLSchema, build_schema

SCHEMA_PATH = Path(__file__).with_name("schema.graphql")


def load_schema() -> GraphQLSchema:
    """Build the sandbox's own schema from ``schema.graphql`` (without resolvers)."""
    return build_schema(SCHEMA_PATH.read_text(encoding="utf-8"))
