"""Calculated query cost and the leaky bucket behind Shopify's GraphQL rate limit.

Cost rules follow https://shopify.dev/docs/api/usage/limits#cost-calculation: scalars and enums 0,
objects 1, connections 2 plus their page size times the cost of one node, mutations 10. The bucket
(maximum 2000, restoring 100 points a second) is charged the requested cost up front and refunded the
difference once the actual cost is known.
"""

from __future__ import annotations

import threading
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
    value_from_ast_untyped,
)

from base.clock import Clock

MUTATION_COST = 10
CONNECTION_COST = 2


def is_connection(type_: GraphQLNamedType) -> bool:
    """Return True for Relay connection types (``...Connection``)."""
    return type_.name.endswith("Connection")


class CostCalculator:
    """Compute requested (static) and actual (from the response) cost of one operation."""

    def __init__(self, schema: GraphQLSchema, fragments: dict[str, FragmentDefinitionNode],
                 variables: dict[str, Any] | None):
        self.schema = schema
        self.fragments = fragments
        self.variables = variables or {}

    def operation(self, op: OperationDefinitionNode, data: dict[str, Any] | None = None) -> int:
        """Return the operation's cost; with ``data`` the actual cost of what was returned."""
        if op.operation.value == "mutation":
            return MUTATION_COST * len(self._fields(op.selection_set, self.schema.mutation_type))
        return self._selection(op.selection_set, self.schema.query_type, data, actual=data is not None)

    def _fields(self, selection_set: SelectionSetNode, parent: GraphQLNamedType) -> list[FieldNode]:
        out: list[FieldNode] = []
        for sel in selection_set.selections:
            if isinstance(sel, FieldNode):
                out.append(sel)
            elif isinstance(sel, InlineFragmentNode):
                out.extend(self._fields(sel.selection_set, parent))
            elif isinstance(sel, FragmentSpreadNode) and sel.name.value in self.fragments:
                out.extend(self._fields(self.fragments[sel.name.value].selection_set, parent))
        return out

    def _arg(self, node: FieldNode, name: str) -> Any:
        for arg in node.arguments or ():
            if arg.name.value == name:
                return value_from_ast_untyped(arg.value, self.variables)
        return None

    def _field_type(self, parent: GraphQLNamedType, name: str, node: FieldNode) -> Any:
        if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType) and name in parent.fields:
            return parent.fields[name].type
        if isinstance(parent, GraphQLUnionType | GraphQLInterfaceType):
            # Fields inside fragments on a member type: look them up on every possible type.
            for member in self.schema.get_possible_types(parent):
                if name in member.fields:
                    return member.fields[name].type
        return None

    def _selection(self, selection_set: SelectionSetNode | None, parent: GraphQLNamedType,
                   data: Any, actual: bool) -> int:
        if selection_set is None:
            return 0
        total = 0
        for node in self._fields(selection_set, parent):
            name = node.name.value
            if name.startswith("__"):
                continue
            field_type = self._field_type(parent, name, node)
            if field_type is None:
                continue
            named = get_named_type(field_type)
            key = node.alias.value if node.alias else name
            value = data.get(key) if isinstance(data, dict) else None
            if actual and value is None:
                continue
            if not isinstance(named, GraphQLObjectType | GraphQLInterfaceType | GraphQLUnionType):
                continue
            if is_connection(named):
                total += CONNECTION_COST + self._connection(node, named, value, actual)
            elif _is_list(field_type):
                if actual:
                    total += sum(1 + self._selection(node.selection_set, named, v, True) for v in value)
                else:
                    size = self._arg(node, "first") or len(self._arg(node, "ids") or ()) or 1
                    total += size * (1 + self._selection(node.selection_set, named, None, False))
            else:
                total += 1 + self._selection(node.selection_set, named, value, actual)
        return total

    def _connection(self, node: FieldNode, conn: GraphQLNamedType, value: Any, actual: bool) -> int:
        size = self._arg(node, "first") or self._arg(node, "last") or 0
        per_node = 0
        count = 0
        for sub in self._fields(node.selection_set, conn) if node.selection_set else ():
            sub_key = sub.alias.value if sub.alias else sub.name.value
            sub_value = value.get(sub_key) if isinstance(value, dict) else None
            if sub.name.value == "nodes":
                node_type = get_named_type(conn.fields["nodes"].type)
                if actual:
                    count = max(count, len(sub_value or ()))
                    per_node = max(per_node, sum(1 + self._selection(sub.selection_set, node_type, v, True)
                                                 for v in sub_value or ()))
                else:
                    per_node = max(per_node, 1 + self._selection(sub.selection_set, node_type, None, False))
            elif sub.name.value == "edges":
                edge_type = get_named_type(conn.fields["edges"].type)
                node_type = get_named_type(edge_type.fields["node"].type)
                for edge_field in self._fields(sub.selection_set, edge_type) if sub.selection_set else ():
                    if edge_field.name.value != "node":
                        continue
                    nkey = edge_field.alias.value if edge_field.alias else "node"
                    if actual:
                        nodes = [e.get(nkey) for e in sub_value or () if isinstance(e, dict)]
                        count = max(count, len(nodes))
                        per_node = max(per_node, sum(1 + self._selection(edge_field.selection_set, node_type,
                                                                         v, True) for v in nodes))
                    else:
                        per_node = max(per_node, 1 + self._selection(edge_field.selection_set, node_type,
                                                                     None, False))
        return per_node if actual else size * per_node


def _is_list(type_: Any) -> bool:
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    return isinstance(type_, GraphQLList)


class LeakyBucket:
    """Shopify's cost bucket for one app on one shop, refilled from an injectable clock."""

    def __init__(self, clock: Clock, maximum: float = 2000.0, restore_rate: float = 100.0):
        self.clock = clock
        self.maximum = maximum
        self.restore_rate = restore_rate
        self._available = maximum
        self._last = clock.now()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self.clock.now()
        elapsed = (now - self._last).total_seconds()
        if elapsed > 0:
            self._available = min(self.maximum, self._available + elapsed * self.restore_rate)
        self._last = max(now, self._last)

    def try_take(self, cost: int) -> bool:
        """Charge ``cost`` points if available; return False (and charge nothing) otherwise."""
        with self._lock:
            self._refill()
            if cost > self._available:
                return False
            self._available -= cost
            return True

    def refund(self, points: int) -> None:
        """Give back points charged but not used."""
        with self._lock:
            self._refill()
            self._available = min(self.maximum, self._available + max(points, 0))

    def drain(self) -> None:
        """Empty the bucket (tests and the demo use this to provoke throttling)."""
        with self._lock:
            self._refill()
            self._available = 0.0

    def status(self) -> dict[str, float]:
        """Return ``throttleStatus`` as Shopify reports it."""
        with self._lock:
            self._refill()
            return {"maximumAvailable": float(self.maximum), "currentlyAvailable": int(self._available),
                    "restoreRate": float(self.restore_rate)}
