"""The analyst-facing names: each archive table as a view over its hot rows and its sealed day files.

`refresh_views` (re)creates `main.<table>` for every table of `layout.SEALED_TABLES`:

    SELECT <columns> FROM hot.<table>
    UNION ALL
    SELECT <columns> FROM read_parquet('<root>/<table>/*/*/*.parquet', hive_partitioning = true, ...)
    WHERE CASE tenant WHEN 'a' THEN day <= DATE '...' ... ELSE false END

Why each part:
* The horizon predicate: a day file becomes visible only once the transaction that sealed it (and
  deleted its rows from hot) has committed. A file left by a crashed sync, or one being written
  while an analyst queries, lies beyond every committed horizon, so no row is ever seen twice or
  half. DuckDB prunes those files by their `day=` folder without opening them.
* Absolute paths: DuckDB resolves a relative path against the reader's working directory, not the
  database file; the writer regenerates the views whenever the sealed folder's path changes.
* Casts to the hot column types, and NULL for a column no day file has yet (a column added by a
  later migration): the view's columns are exactly the table's, whatever the files hold.
* The parquet branch exists only once a file exists: a glob that matches nothing is an error.
Comments are copied from the hot table, so `duckdb_columns()` documents the view as it did the table.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb

from jobs_pipeline.archive.layout import HOT_SCHEMA, SEALED_TABLES, SealedTable, hot
from jobs_pipeline.archive.manifest import all_sealed_through, sealed_columns, sealed_root
from jobs_pipeline.archive.sqltext import sql_identifier, sql_literal

# Hive keys of the sealed folders: not stored inside the files (engines such as Spark refuse a
# column that is both in the file and in the path).
PARTITION_KEYS = ("tenant", "day")


def refresh_views(conn: duckdb.DuckDBPyConnection) -> None:
    """(Re)create every analyst view from the hot tables and the manifest; call inside the writer's transaction."""
    root = sealed_root(conn)
    horizons = all_sealed_through(conn)
    present = sealed_columns(conn)
    for table in SEALED_TABLES:
        columns = hot_columns(conn, table.name)
        if not columns:  # created by a later schema version than the one being migrated to
            continue
        sql = f"SELECT {', '.join(sql_identifier(name) for name, _ in columns)} FROM {hot(table.name)}"
        if root is not None and table.name in present:
            sql += "\nUNION ALL\n" + _sealed_select(
                table, columns, root, horizons[table.family], present[table.name]
            )
        conn.execute(f"CREATE OR REPLACE VIEW main.{table.name} AS {sql}")
        _copy_comments(conn, table.name)
    conn.execute(
        f"CREATE OR REPLACE VIEW main.sealed_partitions AS SELECT * FROM {HOT_SCHEMA}.sealed_partitions"
    )
    _copy_comments(conn, "sealed_partitions")


def hot_columns(conn: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    return [
        (name, data_type)
        for name, data_type in conn.execute(
            "SELECT column_name, data_type FROM duckdb_columns() "
            "WHERE database_name = current_database() AND schema_name = ? AND table_name = ? "
            "ORDER BY column_index",
            [HOT_SCHEMA, table],
        ).fetchall()
    ]


def table_glob(root: Path, table: str) -> str:
    return str(root / table / "*" / "*" / "*.parquet")


def _sealed_select(
    table: SealedTable,
    columns: list[tuple[str, str]],
    root: Path,
    horizons: dict[str, date],
    present: set[str],
) -> str:
    selected = []
    for name, data_type in columns:
        if name == "tenant":
            selected.append("tenant")
        elif name in present:
            selected.append(f"CAST({sql_identifier(name)} AS {data_type}) AS {sql_identifier(name)}")
        else:
            selected.append(f"CAST(NULL AS {data_type}) AS {sql_identifier(name)}")
    source = (
        f"read_parquet({sql_literal(table_glob(root, table.name))}, hive_partitioning = true, "
        "hive_types = {'tenant': VARCHAR, 'day': DATE}, union_by_name = true)"
    )
    return f"SELECT {', '.join(selected)} FROM {source} WHERE {horizon_predicate(horizons)}"


def horizon_predicate(horizons: dict[str, date]) -> str:
    if not horizons:
        return "false"
    cases = " ".join(
        f"WHEN {sql_literal(tenant)} THEN day <= DATE '{day.isoformat()}'"
        for tenant, day in sorted(horizons.items())
    )
    return f"CASE tenant {cases} ELSE false END"


def _copy_comments(conn: duckdb.DuckDBPyConnection, table: str) -> None:
    rows = conn.execute(
        "SELECT comment FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = ? AND table_name = ?",
        [HOT_SCHEMA, table],
    ).fetchall()
    if rows and rows[0][0]:
        conn.execute(f"COMMENT ON VIEW main.{table} IS {sql_literal(rows[0][0])}")
    for name, comment in conn.execute(
        "SELECT column_name, comment FROM duckdb_columns() WHERE database_name = current_database() "
        "AND schema_name = ? AND table_name = ? AND comment IS NOT NULL",
        [HOT_SCHEMA, table],
    ).fetchall():
        conn.execute(f"COMMENT ON COLUMN main.{table}.{sql_identifier(name)} IS {sql_literal(comment)}")
