"""The SQL every record owner shares: the tables, batched ``INSERT ... ON CONFLICT`` upserts, id lookups.

Every upsert is ``INSERT ... ON CONFLICT (store_id, external_id) DO UPDATE ... WHERE <something changed>``
(SQLite and PostgreSQL), executed as one batched ``executemany`` per table and batch. The ``WHERE`` keeps
rows whose data did not change untouched, so a second sync of the same data writes nothing and no
``updated_at`` moves. External ids are mapped to internal ids with one ``SELECT ... IN`` per batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import islice
from typing import Any, TypeVar

from sqlalchemy import JSON, ColumnElement, Table, Text, and_, case, cast, func, insert, or_, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from plugin.models import Customer, Order, OrderLine, Product, Review, SyncState, Variant

T = TypeVar("T")

CUSTOMERS: Table = Customer.__table__  # type: ignore[assignment]
PRODUCTS: Table = Product.__table__  # type: ignore[assignment]
VARIANTS: Table = Variant.__table__  # type: ignore[assignment]
ORDERS: Table = Order.__table__  # type: ignore[assignment]
LINES: Table = OrderLine.__table__  # type: ignore[assignment]
REVIEWS: Table = Review.__table__  # type: ignore[assignment]
SYNC_STATE: Table = SyncState.__table__  # type: ignore[assignment]
# SQLAlchemy's IN with an expanding parameter: keep each list well under SQLite's variable limit.
IN_CHUNK = 900


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Yield lists of at most ``size`` items, consuming ``items`` lazily."""
    if size < 1:
        raise ValueError("batch size must be at least 1")
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def insert_for(session: Session, table: Table) -> Any:
    """Return the dialect's INSERT (the one with ``on_conflict_*``) for the session's database."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return pg_insert(table)
    if dialect == "sqlite":
        return sqlite_insert(table)
    raise NotImplementedError(f"upserts support sqlite and postgresql, not {dialect}")


def custom_plans(session: Session) -> None:
    """Make PostgreSQL plan each lookup for its actual ids in this transaction.

    psycopg prepares statements run five times; PostgreSQL may then switch to a generic plan costed while the
    tables were still empty (a sequential scan), and a backfill slows down as the tables grow.
    https://www.postgresql.org/docs/current/runtime-config-query.html#GUC-PLAN-CACHE-MODE
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


def _differs(table: Table, excluded: Any, fields: Sequence[str]) -> ColumnElement[bool]:
    """Return ``stored.f IS DISTINCT FROM new.f OR ...`` (JSON compared as text: PostgreSQL's json has no =)."""
    parts = []
    for name in fields:
        stored, new = table.c[name], excluded[name]
        if isinstance(stored.type, JSON):
            stored, new = cast(stored, Text), cast(new, Text)
        parts.append(stored.is_distinct_from(new))
    return or_(*parts)


def not_older(table: Table, excluded: Any) -> ColumnElement[bool]:
    """Accept the incoming copy unless both sides are dated and the stored one is newer."""
    stored, new = table.c.remote_updated_at, excluded.remote_updated_at
    return or_(stored.is_(None), new.is_(None), new >= stored)


def on_conflict(stmt: Any, table: Table, *, keys: Sequence[str], update: Sequence[str], where: Any = None,
                 merge: Sequence[str] = (), dated: Mapping[str, str] | None = None) -> Any:
    """Add the upsert's ``ON CONFLICT`` clause: update differing rows only, or do nothing without fields.

    ``dated`` maps columns to the column that dates them: such a column keeps its stored value when the stored
    date is newer than the incoming one (or the incoming copy has none), e.g. a consent withdrawal taken from
    its own webhook is not undone by a sync copy read before it.
    """
    excluded = stmt.excluded
    set_: dict[str, Any] = {name: excluded[name] for name in update}
    for name, date in (dated or {}).items():
        stale = and_(table.c[date].is_not(None), or_(excluded[date].is_(None), excluded[date] < table.c[date]))
        set_[name] = case((stale, table.c[name]), else_=excluded[name])
    set_.update({name: func.coalesce(excluded[name], table.c[name]) for name in merge})
    if not set_:
        return stmt.on_conflict_do_nothing(index_elements=list(keys))
    # ON CONFLICT DO UPDATE ignores Column.onupdate, so the bookkeeping column is set here.
    if "updated_at" in table.c:
        set_["updated_at"] = func.now()
    differences = [_differs(table, excluded, update)] if update else []
    differences += [and_(excluded[m].is_not(None), table.c[m].is_distinct_from(excluded[m])) for m in merge]
    changed = or_(*differences)
    condition = changed if where is None else and_(where(excluded), changed)
    return stmt.on_conflict_do_update(index_elements=list(keys), set_=set_, where=condition)


def upsert(session: Session, table: Table, rows: list[dict[str, Any]], *, keys: Sequence[str],
            update: Sequence[str], where: Any = None, merge: Sequence[str] = (),
            returning: Sequence[str] = ("id",), dated: Mapping[str, str] | None = None) -> list[Any]:
    """Insert ``rows`` or update the differing ones; return the ``returning`` columns of rows written.

    ``update`` columns take the incoming value; ``merge`` columns take it only when it is not NULL.
    Rows skipped by the ``WHERE`` (nothing changed, older copy, redacted) are not returned.
    """
    if not rows:
        return []
    stmt = on_conflict(insert_for(session, table), table, keys=keys, update=update, where=where, merge=merge,
                       dated=dated)
    if not returning:
        session.execute(stmt, rows)
        return []
    stmt = stmt.returning(*(table.c[name] for name in returning))
    return list(session.execute(stmt, rows).all())


def insert_new_then_upsert(session: Session, table: Table, new: list[dict[str, Any]], stored: list[dict[str, Any]],
                            **options: Any) -> None:
    """Write rows that were absent from this transaction's earlier read (``new``) and rows that were there.

    On SQLite the new rows go in with a plain INSERT: transactions start with BEGIN IMMEDIATE, so no other
    writer can have added them since that read, and SQLite's upsert costs about two thirds more per row than
    a plain INSERT even when nothing conflicts. Elsewhere a webhook may insert the same row meanwhile, so
    every row goes through ON CONFLICT.
    """
    if session.get_bind().dialect.name == "sqlite":
        if new:
            session.execute(insert(table), new)
        new = []
    upsert(session, table, new + stored, returning=(), **options)


def ids_by_external(session: Session, table: Table, store_id: int, external_ids: Iterable[str]) -> dict[str, int]:
    """Map external ids to internal ids with one SELECT ... IN per chunk."""
    wanted = sorted(set(external_ids))
    found: dict[str, int] = {}
    for part in chunked(wanted, IN_CHUNK):
        query = select(table.c.external_id, table.c.id).where(table.c.store_id == store_id,
                                                               table.c.external_id.in_(part))
        found.update(session.execute(query).all())
    return found



def dedupe(rows: Iterable[dict[str, Any]], key: str = "external_id") -> list[dict[str, Any]]:
    """Keep the last row per key: one statement may not touch the same row twice (PostgreSQL refuses)."""
    return list({row[key]: row for row in rows}.values())
