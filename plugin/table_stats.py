"""The query planner's table statistics, kept fresh by the product: after migrations and after large syncs.

Without statistics SQLite cannot weigh an index's columns: in the cohort count it drives the join to orders
through ``customer_id > NULL`` (the ``IS NOT NULL`` filter) instead of ``customer_id = ?``, so every customer
reads every order — 182 s at 49,000 orders where 0.2 s after ``ANALYZE`` (bench/fresh_install.py). A new
install never ran ``ANALYZE`` and the benchmarks always did, so the product does it itself:

- SQLite: every table that holds rows but has no ``sqlite_stat1`` entry is analysed (its first time), the tables
  a large sync wrote are analysed again, then ``PRAGMA optimize`` (https://sqlite.org/pragma.html#pragma_optimize)
  re-analyses whatever else it judges stale. ``analysis_limit`` bounds each index's scan, so the cost stays
  well under a second at a million orders (https://sqlite.org/lang_analyze.html#approx).
- PostgreSQL: autovacuum analyses tables eventually (after 10 % of a table changed, on its own timer), too late
  for the metrics job that follows a backfill, so tables never analysed and the tables a large sync wrote are
  analysed at once (https://www.postgresql.org/docs/current/routine-vacuuming.html#VACUUM-FOR-STATISTICS).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, text

# What a sync run writes (plugin.sync owners); analysed again after a large run.
SYNC_TABLES = ("customer", "product", "variant", "orders", "order_line", "review")
# Rows scanned per index by SQLite's ANALYZE: approximate statistics, cost independent of the table's size.
ANALYSIS_LIMIT = 1000


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sqlite_never_analysed(conn: Connection) -> list[str]:
    """Return the tables holding rows that have no statistics yet (``sqlite_stat1`` has no row for them)."""
    has_stat = conn.execute(text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'"))
    known = set(conn.execute(text("SELECT DISTINCT tbl FROM sqlite_stat1")).scalars()) if has_stat.first() else set()
    tables = conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                               "ORDER BY name")).scalars()
    # An empty table gets no sqlite_stat1 row from ANALYZE; it is analysed once it holds rows.
    return [name for name in tables if name not in known
            and conn.execute(text(f"SELECT EXISTS (SELECT 1 FROM {_quoted(name)})")).scalar()]  # noqa: S608


def _postgres_never_analysed(conn: Connection) -> list[str]:
    """Return the schema's tables that were never analysed nor vacuumed (``reltuples`` is -1 then)."""
    return list(conn.execute(text(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind = 'r' AND n.nspname = current_schema() AND c.reltuples < 0 ORDER BY c.relname")).scalars())


def refresh_statistics(conn: Connection, written: Sequence[str] = ()) -> list[str]:
    """Analyse the tables never analysed and the ``written`` ones (then PRAGMA optimize on SQLite); return them."""
    dialect = conn.dialect.name
    if dialect == "sqlite":
        tables = sorted(set(_sqlite_never_analysed(conn)) | set(written))
        previous = conn.execute(text("PRAGMA analysis_limit")).scalar_one()
        conn.execute(text(f"PRAGMA analysis_limit = {ANALYSIS_LIMIT}"))
        try:
            for name in tables:
                conn.execute(text(f"ANALYZE {_quoted(name)}"))
            conn.execute(text("PRAGMA optimize"))
        finally:
            # A pragma of the connection, which goes back to the pool.
            conn.execute(text(f"PRAGMA analysis_limit = {int(previous)}"))
        return tables
    if dialect == "postgresql":
        tables = sorted(set(_postgres_never_analysed(conn)) | set(written))
        if tables:
            conn.execute(text("ANALYZE " + ", ".join(_quoted(name) for name in tables)))
        return tables
    return []


def analyse_first_rows(conn: Connection, tables: Sequence[str]) -> list[str]:
    """Analyse those of ``tables`` PostgreSQL holds no column statistics for (never analysed, or analysed empty).

    Until a table's first ANALYZE the planner cannot tell its indexes apart: the staged upsert's lookup of
    ``customer (store_id, external_id)`` then went through ``(store_id, email)`` and filtered every customer
    of the store, once per order — 135 s for a fresh install's first 49,000 orders (bench/fresh_install.py).
    Autovacuum comes too late for a backfill's first minutes, and when it analyses a table while it is still empty
    the planner is no wiser. One catalog probe per batch; the ANALYZE runs once per table (sampled, so it stays
    cheap however large the table).
    """
    if conn.dialect.name != "postgresql" or not tables:
        return []
    # Statistics once there stay there (autovacuum refreshes them): one probe per connection and table set.
    known = conn.info.setdefault("aftercare.analysed", set())
    tables = [name for name in tables if name not in known]
    if not tables:
        return []
    never = conn.execute(text(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind = 'r' AND n.nspname = current_schema() AND c.relname = ANY(:names) "
        "AND NOT EXISTS (SELECT 1 FROM pg_stats s WHERE s.schemaname = n.nspname AND s.tablename = c.relname) "
        "ORDER BY c.relname"), {"names": list(tables)}).scalars().all()
    if never:
        conn.execute(text("ANALYZE " + ", ".join(_quoted(name) for name in never)))
    # An ANALYZE of a table with no rows leaves it without statistics: probed again on the next batch.
    known.update(name for name in tables if name not in never)
    return list(never)


def is_large_sync(counts: dict[str, object], threshold: int) -> bool:
    """Tell whether a sync run's counts call for fresh statistics: a backfill, or at least ``threshold`` rows."""
    return bool(counts.get("backfill")) or int(counts.get("rows_written", 0) or 0) >= threshold
