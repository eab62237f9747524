"""Bulk query operations: validate, run over the whole store, write JSONL with ``__parentId``.

https://shopify.dev/docs/api/usage/bulk-operations/queries : one bulk query per app and shop at a time;
at most five connections, nested at most two deep; the result is JSONL where each node of a nested
connection is its own line carrying ``__parentId``. Status moves CREATED -> RUNNING -> COMPLETED, one
step each time a client polls (``currentBulkOperation`` or ``node``), so the stages are observable.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, replace
from typing import Any

from graphql import (
    FieldNode,
    GraphQLAbstractType,
    GraphQLEnumType,
    GraphQLError,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    InlineFragmentNode,
    NameNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
    parse,
    validate,
)
from graphql.execution.values import get_argument_values

from sandbox.shopify.context import Context
from sandbox.shopify.cost import is_connection
from sandbox.shopify.models import BulkOperation
from sandbox.shopify.resolvers import default_resolver

MAX_CONNECTIONS = 5
MAX_DEPTH = 2
_PARENT_ALIAS = "sandboxParentId_"


class BulkManager:
    """Create, advance and serve the bulk operations of every shop in the sandbox."""

    def __init__(self, schema: GraphQLSchema):
        self.schema = schema
        self.files: dict[int, bytes] = {}
        self._lock = threading.RLock()

    # -- mutation ----------------------------------------------------------------------------------------
    def run_query(self, ctx: Context, query: str) -> dict[str, Any]:
        """Resolve ``bulkOperationRunQuery``: userErrors for bad queries or one already running."""
        problem = self.check_query(query)
        if problem:
            return {"bulkOperation": None,
                    "userErrors": [{"field": ["query"], "message": problem, "code": "INVALID"}]}
        with self._lock:
            running = [op for op in ctx.state.bulk_ops.values()
                       if op.client_id == ctx.app.client_id and op.status in ("CREATED", "RUNNING")]
            if running:
                return {"bulkOperation": None, "userErrors": [{
                    "field": None, "code": "OPERATION_IN_PROGRESS",
                    "message": "A bulk query operation for this app and shop is already in progress: "
                               f"gid://shopify/BulkOperation/{running[0].id}."}]}
            op = BulkOperation(id=ctx.store.new_id(), client_id=ctx.app.client_id, query=query,
                               created_at=ctx.now)
            ctx.state.bulk_ops[op.id] = op
        return {"bulkOperation": op, "userErrors": []}

    def check_query(self, query: str) -> str | None:
        """Return why Shopify would refuse this bulk query, or None."""
        try:
            doc = parse(query)
        except GraphQLError as exc:
            return f"Invalid bulk query: {exc.message}"
        errors = validate(self.schema, doc)
        if errors:
            return "Invalid bulk query: " + re.sub(r" Did you mean .*\?$", "", errors[0].message)
        ops = [d for d in doc.definitions if isinstance(d, OperationDefinitionNode)]
        if len(ops) != 1 or ops[0].operation.value != "query":
            return "Bulk queries must contain exactly one query operation."
        top = [s for s in ops[0].selection_set.selections if isinstance(s, FieldNode)]
        query_type = self.schema.query_type
        if len(top) != 1 or not is_connection(get_named_type(query_type.fields[top[0].name.value].type)):
            return "Bulk queries must contain at least one connection."
        count, depth = _connections(top[0], query_type)
        if count > MAX_CONNECTIONS:
            return f"Bulk queries cannot contain more than {MAX_CONNECTIONS} connections."
        if depth > MAX_DEPTH:
            return f"Bulk queries cannot contain connections with a nesting depth greater than {MAX_DEPTH}."
        return None

    # -- polling -----------------------------------------------------------------------------------------
    def current(self, ctx: Context, op_type: str = "QUERY") -> BulkOperation | None:
        """Return the app's latest operation on the shop, advanced one step."""
        ops = [op for op in ctx.state.bulk_ops.values()
               if op.client_id == ctx.app.client_id and op.type == op_type]
        if not ops:
            return None
        return self.advance(ctx, max(ops, key=lambda op: op.id))

    def get(self, ctx: Context, number: int) -> BulkOperation | None:
        """Return one of the app's operations by id, advanced one step."""
        op = ctx.state.bulk_ops.get(number)
        if op is None or op.client_id != ctx.app.client_id:
            return None
        return self.advance(ctx, op)

    def advance(self, ctx: Context, op: BulkOperation) -> BulkOperation:
        """Move CREATED to RUNNING, or RUNNING to its end state (running the query)."""
        with self._lock:
            if op.status == "CREATED":
                op.status = "RUNNING"
            elif op.status == "RUNNING":
                self._complete(ctx, op)
        return op

    def finish_all(self, ctx: Context) -> None:
        """Run every pending operation of the context's app to its end (control API)."""
        for op in list(ctx.state.bulk_ops.values()):
            if op.client_id == ctx.app.client_id:
                while op.status in ("CREATED", "RUNNING"):
                    self.advance(ctx, op)

    def _complete(self, ctx: Context, op: BulkOperation) -> None:
        doc = parse(op.query)
        original = next(d for d in doc.definitions if isinstance(d, OperationDefinitionNode))
        operation = replace(original, selection_set=_inject_parent_ids(original.selection_set,
                                                                          self.schema.query_type))
        doc = replace(doc, definitions=tuple(operation if d is original else d for d in doc.definitions))
        run_ctx = replace(ctx, bulk=True, search=[])
        try:
            data = _LeanExecutor(self.schema, run_ctx).run(operation)
        except GraphQLError as exc:
            op.status = "FAILED"
            code = (exc.extensions or {}).get("code")
            op.error_code = "ACCESS_DENIED" if code == "ACCESS_DENIED" else "INTERNAL_SERVER_ERROR"
        else:
            lines: list[dict[str, Any]] = []
            top = next(s for s in operation.selection_set.selections if isinstance(s, FieldNode))
            key = top.alias.value if top.alias else top.name.value
            conn_type = get_named_type(self.schema.query_type.fields[top.name.value].type)
            roots = _emit_connection(data[key], top, conn_type, None, lines)
            body = b"".join(json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
                            for line in lines)
            op.status = "COMPLETED"
            op.object_count = len(lines)
            op.root_object_count = roots
            op.file_size = len(body) if lines else None
            if lines:
                self.files[op.id] = body
                op.url = f"{ctx.base_url}/__bulk/{op.id}.jsonl"
        op.completed_at = ctx.world.clock.now()
        ctx.world.notify_bulk_finished(ctx.state, ctx.app, op)


def _fields(selection_set: SelectionSetNode | None) -> list[FieldNode]:
    out: list[FieldNode] = []
    for sel in selection_set.selections if selection_set else ():
        if isinstance(sel, FieldNode):
            out.append(sel)
        elif isinstance(sel, InlineFragmentNode):
            out.extend(_fields(sel.selection_set))
    return out


def _node_selection(conn_field: FieldNode, conn_type: GraphQLObjectType
                    ) -> tuple[FieldNode | None, GraphQLNamedType, str | None]:
    """Find the node selection of a connection: ``nodes { }`` or ``edges { node { } }``."""
    node_type = get_named_type(conn_type.fields["nodes"].type)
    for sub in _fields(conn_field.selection_set):
        if sub.name.value == "nodes":
            return sub, node_type, None
        if sub.name.value == "edges":
            for inner in _fields(sub.selection_set):
                if inner.name.value == "node":
                    return inner, node_type, sub.alias.value if sub.alias else "edges"
    return None, node_type, None


def _child_connections(node_field: FieldNode, node_type: GraphQLNamedType) -> list[tuple[FieldNode, Any]]:
    out = []
    for sub in _fields(node_field.selection_set):
        field = getattr(node_type, "fields", {}).get(sub.name.value)
        if field is not None and is_connection(get_named_type(field.type)):
            out.append((sub, get_named_type(field.type)))
    return out


def _connections(conn_field: FieldNode, parent: GraphQLObjectType) -> tuple[int, int]:
    """Count connections under (and including) a connection field and their deepest nesting."""
    conn_type = get_named_type(parent.fields[conn_field.name.value].type)
    node_field, node_type, _ = _node_selection(conn_field, conn_type)
    count, depth = 1, 1
    if node_field is None:
        return count, depth
    for sub, _sub_type in _child_connections(node_field, node_type):
        c, d = _connections(sub, node_type)
        count += c
        depth = max(depth, 1 + d)
    return count, depth


def _inject_parent_ids(selection_set: SelectionSetNode, parent: GraphQLObjectType) -> SelectionSetNode:
    """Return a copy where every node with nested connections also selects its id (for ``__parentId``)."""
    selections = []
    for sel in selection_set.selections:
        field = parent.fields.get(sel.name.value) if isinstance(sel, FieldNode) else None
        if field is not None and is_connection(get_named_type(field.type)) and sel.selection_set:
            sel = replace(sel, selection_set=_inject_in_connection(sel.selection_set,
                                                                      get_named_type(field.type)))
        selections.append(sel)
    return replace(selection_set, selections=tuple(selections))


def _inject_in_connection(selection_set: SelectionSetNode, conn_type: GraphQLObjectType) -> SelectionSetNode:
    node_type = get_named_type(conn_type.fields["nodes"].type)
    selections = []
    for sel in selection_set.selections:
        if isinstance(sel, FieldNode) and sel.selection_set and sel.name.value == "nodes":
            sel = replace(sel, selection_set=_with_parent_id(sel, node_type))
        elif isinstance(sel, FieldNode) and sel.selection_set and sel.name.value == "edges":
            inner = [replace(n, selection_set=_with_parent_id(n, node_type))
                     if isinstance(n, FieldNode) and n.name.value == "node" and n.selection_set else n
                     for n in sel.selection_set.selections]
            sel = replace(sel, selection_set=replace(sel.selection_set, selections=tuple(inner)))
        selections.append(sel)
    return replace(selection_set, selections=tuple(selections))


def _with_parent_id(node_field: FieldNode, node_type: GraphQLObjectType) -> SelectionSetNode:
    new = _inject_parent_ids(node_field.selection_set, node_type)
    if _child_connections(node_field, node_type):
        extra = FieldNode(name=NameNode(value="id"), alias=NameNode(value=_PARENT_ALIAS), arguments=(),
                          directives=())
        new = replace(new, selections=(*new.selections, extra))
    return new


def _emit_connection(value: Any, conn_field: FieldNode, conn_type: GraphQLObjectType, parent_id: str | None,
                     lines: list[dict[str, Any]]) -> int:
    if not value:
        return 0
    node_field, node_type, edges_key = _node_selection(conn_field, conn_type)
    if node_field is None:
        return 0
    if edges_key is not None:
        node_key = node_field.alias.value if node_field.alias else "node"
        nodes = [edge[node_key] for edge in value.get(edges_key) or ()]
    else:
        nodes = value.get(node_field.alias.value if node_field.alias else "nodes") or []
    children = _child_connections(node_field, node_type)
    for node in nodes:
        line = dict(node)
        nested = [(line.pop(sub.alias.value if sub.alias else sub.name.value, None), sub, t)
                  for sub, t in children]
        own_id = line.pop(_PARENT_ALIAS, None) or line.get("id")
        if parent_id is not None:
            line["__parentId"] = parent_id
        lines.append(line)
        for child_value, sub, sub_type in nested:
            _emit_connection(child_value, sub, sub_type, own_id, lines)
    return len(nodes)


class _Path:
    """The bit of ``GraphQLResolveInfo.path`` the resolvers read."""

    def as_list(self) -> list[str]:
        return []


@dataclass
class _Info:
    """The bits of ``GraphQLResolveInfo`` the sandbox resolvers read."""

    context: Any
    field_name: str
    path: _Path


class _LeanExecutor:
    """Execute an already validated query over whole connections, without graphql-core's per-field overhead.

    Bulk runs touch every object of the store; graphql-core's general executor (async checks, incremental
    delivery, error bubbling) makes them ten times slower than this direct walk, which calls the very same
    resolvers and scalar serializers. Resolver errors propagate: a bulk operation fails as a whole.
    """

    def __init__(self, schema: GraphQLSchema, ctx: Any):
        self.schema = schema
        self.ctx = ctx
        self.path = _Path()
        self._collected: dict[tuple[int, str], list[FieldNode]] = {}

    def run(self, operation: OperationDefinitionNode) -> dict[str, Any]:
        return self._object(operation.selection_set, self.schema.query_type, None)

    def _fields(self, selection_set: SelectionSetNode, type_: GraphQLObjectType) -> list[FieldNode]:
        key = (id(selection_set), type_.name)
        if key not in self._collected:
            self._collected[key] = self._collect(selection_set, type_)
        return self._collected[key]

    def _collect(self, selection_set: SelectionSetNode, type_: GraphQLObjectType) -> list[FieldNode]:
        out: list[FieldNode] = []
        for sel in selection_set.selections:
            if isinstance(sel, FieldNode):
                out.append(sel)
            elif isinstance(sel, InlineFragmentNode):
                cond = sel.type_condition.name.value if sel.type_condition else type_.name
                target = self.schema.get_type(cond)
                if cond == type_.name or (isinstance(target, GraphQLAbstractType)
                                          and self.schema.is_sub_type(target, type_)):
                    out.extend(self._collect(sel.selection_set, type_))
        return out

    def _object(self, selection_set: SelectionSetNode, type_: GraphQLObjectType, source: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for node in self._fields(selection_set, type_):
            name = node.name.value
            key = node.alias.value if node.alias else name
            if name == "__typename":
                out[key] = type_.name
                continue
            field = type_.fields[name]
            args = get_argument_values(field, node) if node.arguments else {}
            resolve = field.resolve or default_resolver
            value = resolve(source, _Info(self.ctx, name, self.path), **args)
            out[key] = self._complete(field.type, value, node)
        return out

    def _complete(self, type_: Any, value: Any, node: FieldNode) -> Any:
        if isinstance(type_, GraphQLNonNull):
            type_ = type_.of_type
        if value is None:
            return None
        if isinstance(type_, GraphQLList):
            return [self._complete(type_.of_type, item, node) for item in value]
        if isinstance(type_, GraphQLScalarType):
            return type_.serialize(value)
        if isinstance(type_, GraphQLEnumType):
            return value
        if isinstance(type_, GraphQLAbstractType):
            type_ = self.schema.get_type(type_.resolve_type(value, _Info(self.ctx, "", self.path), type_))
        return self._object(node.selection_set, type_, value)
