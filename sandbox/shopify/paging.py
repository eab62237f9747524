"""Search syntax (``query:``), sort keys and cursor connections, as Shopify's Admin API pages lists.

Search syntax: https://shopify.dev/docs/api/usage/search-syntax ; pagination:
https://shopify.dev/docs/api/usage/pagination-graphql . Cursors are opaque (base64 of the sort value
and id), so a page boundary stays stable when earlier items change.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from graphql import GraphQLError

MAX_PAGE_SIZE = 250

_TERM = re.compile(r"""(?P<neg>-)?(?P<field>[a-z_]+):(?P<op><=|>=|<|>|=)?(?P<value>'[^']*'|"[^"]*"|\S+)""")
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
}
DATE_FIELDS = ("created_at", "updated_at", "processed_at")


@dataclass(frozen=True)
class Term:
    """One parsed search term such as ``updated_at:>='2025-01-01T00:00:00Z'``."""

    field: str
    op: str
    value: Any
    negated: bool = False


def parse_search(query: str | None, fields: Sequence[str], tz: str) -> tuple[list[Term], list[dict[str, str]]]:
    """Parse a search string into terms on known fields; unknown fields become Shopify-style warnings."""
    terms: list[Term] = []
    warnings: list[dict[str, str]] = []
    if not query:
        return terms, warnings
    for word in re.findall(r"""(?:[^\s'"]+|'[^']*'|"[^"]*")+""", query):
        if word.upper() == "AND":
            continue
        match = _TERM.fullmatch(word)
        if not match:
            warnings.append({"field": word, "message": "Invalid search term."})
            continue
        field = match["field"]
        if field not in fields:
            warnings.append({"field": field, "message": "Invalid search field for this query."})
            continue
        raw = match["value"].strip("'\"")
        try:
            value = _parse_value(field, raw, tz)
        except ValueError:
            warnings.append({"field": field, "message": f"Invalid value: {raw}"})
            continue
        terms.append(Term(field, match["op"] or "=", value, bool(match["neg"])))
    return terms, warnings


def _parse_value(field: str, raw: str, tz: str) -> Any:
    if field in DATE_FIELDS:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
            # A bare date means midnight in the shop's time zone.
            day = datetime.fromisoformat(raw).date()
            return datetime.combine(day, time(0), ZoneInfo(tz)).astimezone(UTC)
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=ZoneInfo(tz))
        return parsed.astimezone(UTC)
    if field == "id":
        return int(raw.rsplit("/", 1)[-1])
    return raw.lower()


def matches(item: Any, terms: list[Term], getters: dict[str, Callable[[Any], Any]]) -> bool:
    """Return True when the item satisfies every term (terms are combined with AND)."""
    for term in terms:
        value = getters[term.field](item)
        if isinstance(value, str):
            value = value.lower()
        ok = value is not None and _OPS[term.op](value, term.value)
        if ok == term.negated:
            return False
    return True


def encode_cursor(key: tuple[Any, int]) -> str:
    """Return an opaque cursor for a (sort value, id) key."""
    value = key[0].isoformat() if isinstance(key[0], datetime) else key[0]
    raw = json.dumps({"v": value, "id": key[1], "dt": isinstance(key[0], datetime)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[Any, int]:
    """Decode a cursor made by :func:`encode_cursor`; raise a GraphQLError for garbage."""
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        value = datetime.fromisoformat(data["v"]) if data["dt"] else data["v"]
        return value, int(data["id"])
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise GraphQLError("Invalid cursor for current pagination sort.",
                           extensions={"code": "BAD_REQUEST"}) from exc


def page_args(args: dict[str, Any], unbounded: bool) -> tuple[int | None, int | None]:
    """Validate first/last like Shopify and return them."""
    first, last = args.get("first"), args.get("last")
    if unbounded:
        return None, None
    if first is None and last is None:
        raise GraphQLError("you must provide one of first or last", extensions={"code": "BAD_REQUEST"})
    if first is not None and last is not None:
        raise GraphQLError("providing both first and last is not supported", extensions={"code": "BAD_REQUEST"})
    for name, value in (("first", first), ("last", last)):
        if value is not None and (value < 0 or value > MAX_PAGE_SIZE):
            raise GraphQLError(f"The value of the argument `{name}` must be between 0 and {MAX_PAGE_SIZE}.",
                               extensions={"code": "BAD_REQUEST"})
    return first, last


def connection(items: Sequence[Any], key: Callable[[Any], tuple[Any, int]], args: dict[str, Any],
               unbounded: bool = False, keys: Sequence[tuple[Any, int]] | None = None) -> dict[str, Any]:
    """Sort ``items`` by ``key`` (and ``reverse``), then slice one page after/before the cursors.

    Callers holding items already in key order pass their ``keys`` to skip the sort.
    """
    first, last = page_args(args, unbounded)
    if keys is None:
        ordered = sorted(items, key=key)
        keys = [key(i) for i in ordered]
    else:
        ordered = items
    reverse = bool(args.get("reverse"))
    try:
        lo, hi = _bounds(keys, args.get("after"), args.get("before"), reverse)
    except TypeError as exc:  # a cursor made under another sort key
        raise GraphQLError("Invalid cursor for current pagination sort.",
                           extensions={"code": "BAD_REQUEST"}) from exc
    window = list(range(lo, hi)) if not reverse else list(range(hi - 1, lo - 1, -1))
    if first is not None:
        page = window[:first]
    elif last is not None:
        page = window[max(len(window) - last, 0):] if last else []
    else:
        page = window
    total = len(ordered)
    if page:
        if not reverse:
            has_prev, has_next = page[0] > 0, page[-1] < total - 1
        else:
            has_prev, has_next = page[0] < total - 1, page[-1] > 0
    else:
        has_prev = has_next = False
    edges = [{"cursor": encode_cursor(keys[i]), "node": ordered[i]} for i in page]
    return {
        "edges": edges,
        "nodes": [e["node"] for e in edges],
        "pageInfo": {"hasNextPage": has_next, "hasPreviousPage": has_prev,
                     "startCursor": edges[0]["cursor"] if edges else None,
                     "endCursor": edges[-1]["cursor"] if edges else None},
    }


def _bounds(keys: list[tuple[Any, int]], after: str | None, before: str | None,
            reverse: bool) -> tuple[int, int]:
    lo, hi = 0, len(keys)
    if not reverse:
        if after:
            lo = max(lo, bisect_right(keys, decode_cursor(after)))
        if before:
            hi = min(hi, bisect_left(keys, decode_cursor(before)))
    else:
        # In reverse order "after" means smaller keys and "before" larger ones.
        if after:
            hi = min(hi, bisect_left(keys, decode_cursor(after)))
        if before:
            lo = max(lo, bisect_right(keys, decode_cursor(before)))
    return lo, hi
