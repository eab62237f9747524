"""Run one Admin GraphQL request: parse, validate, size-check, cost, throttle, execute, report cost.

Error shapes follow https://shopify.dev/docs/api/admin-graphql#status-and-error-codes and
https://shopify.dev/docs/api/usage/limits (THROTTLED, MAX_COST_EXCEEDED, MAX_INPUT_SIZE_EXCEEDED).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from graphql import (
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLSchema,
    ListValueNode,
    OperationDefinitionNode,
    execute,
    get_operation_ast,
    parse,
    validate,
    visit,
)
from graphql.language import Visitor

from sandbox.shopify.auth import AppRecord
from sandbox.shopify.context import BulkOperations, Context
from sandbox.shopify.cost import CostCalculator
from sandbox.shopify.resolvers import default_resolver
from sandbox.shopify.state import ShopState
from sandbox.shopify.world import ShopWorld


@dataclass(frozen=True)
class GraphQLEndpoint:
    """What answers Admin GraphQL besides the world: the schema with its resolvers, bulk operations, the cost cap."""

    schema: GraphQLSchema
    bulk: BulkOperations
    max_query_cost: int

MAX_INPUT_ITEMS = 250
RATE_LIMIT_DOC = "https://shopify.dev/api/usage/rate-limits"
_VALIDATION_CODES = (
    (re.compile(r"^Cannot query field"), "undefinedField"),
    (re.compile(r"^Unknown argument"), "argumentNotAccepted"),
    (re.compile(r"argument .* is required"), "missingRequiredArguments"),
    (re.compile(r"^Unknown type"), "undefinedType"),
    (re.compile(r"^Variable"), "variableMismatch"),
    (re.compile(r"must have a selection of subfields|must not have a selection"), "selectionMismatch"),
    (re.compile(r"^Unknown fragment|^Fragment"), "fragmentMismatch"),
    (re.compile(r"cannot represent|Expected value of type|Enum"), "argumentLiteralsIncompatible"),
)


_UNDEFINED_FIELD = re.compile(r"^Cannot query field '(?P<field>\w+)' on type '(?P<type>\w+)'\.")
_UNKNOWN_ARGUMENT = re.compile(r"^Unknown argument '(?P<arg>\w+)' on field '(?P<type>\w+)\.(?P<field>\w+)'\.")


def _error(err: GraphQLError, code: str) -> dict[str, Any]:
    out = err.formatted
    extensions = dict(out.get("extensions") or {})
    extensions.setdefault("code", code)
    # graphql-ruby (Shopify's server) words these two differently and never suggests names.
    message = re.sub(r" Did you mean .*\?$", "", out["message"])
    if match := _UNDEFINED_FIELD.match(message):
        message = f"Field '{match['field']}' doesn't exist on type '{match['type']}'"
        extensions.update(typeName=match["type"], fieldName=match["field"])
    elif match := _UNKNOWN_ARGUMENT.match(message):
        message = f"Field '{match['field']}' doesn't accept argument '{match['arg']}'"
        extensions.update(name=match["arg"], typeName="Field", argumentName=match["arg"])
    out["message"] = message
    out["extensions"] = extensions
    return out


def _validation_code(message: str) -> str:
    for pattern, code in _VALIDATION_CODES:
        if pattern.search(message):
            return code
    return "GRAPHQL_VALIDATION_FAILED"


class _ListSize(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.too_big: ListValueNode | None = None

    def enter_list_value(self, node: ListValueNode, *_: Any) -> None:
        if len(node.values) > MAX_INPUT_ITEMS and self.too_big is None:
            self.too_big = node


def _oversized_variable(value: Any) -> int | None:
    if isinstance(value, list):
        if len(value) > MAX_INPUT_ITEMS:
            return len(value)
        value = {str(i): v for i, v in enumerate(value)}
    if isinstance(value, dict):
        for item in value.values():
            size = _oversized_variable(item)
            if size:
                return size
    return None


def _input_size_error(op: OperationDefinitionNode, variables: dict[str, Any]) -> dict[str, Any] | None:
    """Shopify rejects any input list longer than 250 items."""
    finder = _ListSize()
    visit(op, finder)
    size, location = None, None
    if finder.too_big is not None:
        size = len(finder.too_big.values)
        loc = finder.too_big.loc
        location = [{"line": loc.source.get_location(loc.start).line,
                     "column": loc.source.get_location(loc.start).column}] if loc else None
    else:
        size = _oversized_variable(variables)
    if size is None:
        return None
    error: dict[str, Any] = {
        "message": f"The input array size of {size} is greater than the maximum allowed of {MAX_INPUT_ITEMS}.",
        "extensions": {"code": "MAX_INPUT_SIZE_EXCEEDED"}}
    if location:
        error["locations"] = location
    return error


def run_graphql(world: ShopWorld, endpoint: GraphQLEndpoint, state: ShopState, app: AppRecord,
                body: dict[str, Any], base_url: str) -> dict[str, Any]:
    """Answer one GraphQL request body; always a JSON object (HTTP 200), as Shopify does."""
    query = body.get("query")
    variables = body.get("variables") or {}
    if not isinstance(query, str) or not query.strip():
        return {"errors": [{"message": "No query string was present", "extensions": {"code": "BAD_REQUEST"}}]}
    if not isinstance(variables, dict):
        return {"errors": [{"message": "Variables must be a JSON object",
                            "extensions": {"code": "INVALID_VARIABLE"}}]}
    try:
        document = parse(query)
    except GraphQLError as exc:
        return {"errors": [_error(exc, "PARSE_ERROR")]}
    errors = validate(endpoint.schema, document)
    if errors:
        return {"errors": [_error(e, _validation_code(e.message)) for e in errors]}
    op = get_operation_ast(document, body.get("operationName"))
    if op is None:
        return {"errors": [{"message": "An operation name is required", "extensions": {"code": "BAD_REQUEST"}}]}
    too_big = _input_size_error(op, variables)
    if too_big:
        return {"errors": [too_big]}
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    calc = CostCalculator(endpoint.schema, fragments, variables)
    requested = calc.operation(op)
    bucket = state.bucket(app.client_id)
    if requested > endpoint.max_query_cost:
        return {"errors": [{
            "message": f"Query cost is {requested}, which exceeds the single query max cost limit "
                       f"({endpoint.max_query_cost}).",
            "extensions": {"code": "MAX_COST_EXCEEDED", "cost": requested, "maxCost": endpoint.max_query_cost,
                           "documentation": RATE_LIMIT_DOC}}],
            "extensions": {"cost": {"requestedQueryCost": requested, "actualQueryCost": None,
                                    "throttleStatus": bucket.status()}}}
    if not bucket.try_take(requested):
        return {"errors": [{"message": "Throttled",
                            "extensions": {"code": "THROTTLED", "documentation": RATE_LIMIT_DOC}}],
                "extensions": {"cost": {"requestedQueryCost": requested, "actualQueryCost": None,
                                        "throttleStatus": bucket.status()}}}
    ctx = Context(world=world, state=state, app=app, now=world.clock.now(), base_url=base_url,
                  bulk_ops=endpoint.bulk)
    result = execute(endpoint.schema, document, context_value=ctx, variable_values=variables,
                     operation_name=body.get("operationName"), field_resolver=default_resolver)
    if op.operation.value == "mutation" or result.data is None:
        actual = requested if result.data is not None else 0
    else:
        actual = calc.operation(op, result.data)
    bucket.refund(requested - actual)
    payload: dict[str, Any] = {}
    if result.errors:
        default = "INVALID_VARIABLE" if result.data is None else "INTERNAL_SERVER_ERROR"
        payload["errors"] = [_error(e, default) for e in result.errors]
    if result.data is not None:
        payload["data"] = result.data
    extensions: dict[str, Any] = {"cost": {"requestedQueryCost": requested, "actualQueryCost": actual,
                                           "throttleStatus": bucket.status()}}
    if ctx.search:
        extensions["search"] = ctx.search
    payload["extensions"] = extensions
    return payload
