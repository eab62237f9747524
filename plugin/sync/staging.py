"""PostgreSQL staging tables: a batch COPYed into temporary tables, then written with set-based statements.

The house pattern for bulk writes on PostgreSQL (plugin.sync.orders_staged, plugin.sync.parcels): per-row
``INSERT ... ON CONFLICT`` through executemany waits on the server once per page of rows, while COPY streams the
batch in one round trip and one ``INSERT ... SELECT`` (or ``UPDATE ... FROM``) per table writes it. Each owner
declares its staging tables on its own ``MetaData`` and builds their setup once with ``staging_setup``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Column, MetaData, Table, delete
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session
from sqlalchemy.schema import CreateIndex, CreateTable


def staging_table(metadata: MetaData, name: str, source: Table, columns: Sequence[str], *extra: Column[Any]) -> Table:
    """Declare a temporary table with ``columns`` typed as ``source``'s, plus ``extra`` columns; emptied at commit."""
    return Table(name, metadata, *(Column(c, source.c[c].type) for c in columns), *extra,
                 prefixes=["TEMPORARY"], postgresql_on_commit="DELETE ROWS")


def staging_setup(metadata: MetaData) -> str:
    """Return the SQL that creates ``metadata``'s staging tables on a connection's first batch and empties them on
    later batches of one transaction."""
    dialect = postgresql.dialect()
    tables = list(metadata.tables.values())
    return ";\n".join(
        [str(ddl.compile(dialect=dialect))
         for table in tables
         for ddl in (CreateTable(table, if_not_exists=True),
                     *(CreateIndex(i, if_not_exists=True) for i in table.indexes))]
        + [str(delete(table).compile(dialect=dialect)) for table in tables])


def prepare_staging(session: Session, setup: str) -> None:
    """Run a ``staging_setup`` script."""
    cursor = session.connection().connection.cursor()
    try:
        # Parameterless, so psycopg sends it as one simple query: one round trip per batch.
        cursor.execute(setup)
    finally:
        cursor.close()


def copy_rows(session: Session, table: Table, rows: Iterable[tuple[Any, ...]]) -> None:
    """COPY ``rows`` (tuples in the table's column order) into a staging table."""
    cursor = session.connection().connection.cursor()
    try:
        with cursor.copy(f"COPY {table.name} ({', '.join(c.name for c in table.c)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    finally:
        cursor.close()


def rowcount(session: Session, stmt: Any) -> int:
    """Execute ``stmt`` and return how many rows it inserted, updated or deleted."""
    # SQLAlchemy only keeps an INSERT's rowcount when asked to.
    return int(session.execute(stmt.execution_options(preserve_rowcount=True)).rowcount)
