"""The sealed files' bookkeeping, kept in the hot store so that it commits with the rows it describes.

* `hot.archive_settings`: where the sealed folder is (`sealed_root`); set by the writer on open.
* `hot.sealed_through`: per tenant and family, the last day that is sealed (inclusive). Rows of
  that family dated on or before it live only in Parquet; nothing may be written there any more.
* `hot.sealed_partitions`: one row per day file (what the views read, and what an operator or an
  external engine can list): path, rows, bytes and the columns it holds.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb

from jobs_pipeline.archive.layout import Family

SEALED_ROOT_KEY = "sealed_root"
# A session variable, not a stored value: the writer states on open where THIS archive's sealed
# folder is, and the next sync records it (and repoints the views) inside its own transaction,
# so opening a moved or copied archive writes nothing until a sync succeeds.
SEALED_ROOT_VARIABLE = "jobs_pipeline_sealed_root"


def sealed_root(conn: duckdb.DuckDBPyConnection) -> Path | None:
    rows = conn.execute("SELECT value FROM hot.archive_settings WHERE key = ?", [SEALED_ROOT_KEY]).fetchall()
    return Path(rows[0][0]) if rows else None


def announce_sealed_root(conn: duckdb.DuckDBPyConnection, root: Path) -> None:
    """Tell this session where the archive's sealed folder is (see SEALED_ROOT_VARIABLE)."""
    conn.execute(f"SET VARIABLE {SEALED_ROOT_VARIABLE} = ?", [str(root)])


def announced_sealed_root(conn: duckdb.DuckDBPyConnection) -> Path | None:
    ((value,),) = conn.execute(f"SELECT getvariable('{SEALED_ROOT_VARIABLE}')").fetchall()
    return Path(value) if value else None


def set_sealed_root(conn: duckdb.DuckDBPyConnection, root: Path) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO hot.archive_settings (key, value) VALUES (?, ?)", [SEALED_ROOT_KEY, str(root)]
    )


def sealed_through(conn: duckdb.DuckDBPyConnection, tenant: str, family: Family) -> date | None:
    rows = conn.execute(
        "SELECT day FROM hot.sealed_through WHERE tenant = ? AND family = ?", [tenant, family.value]
    ).fetchall()
    return rows[0][0] if rows else None


def all_sealed_through(conn: duckdb.DuckDBPyConnection) -> dict[Family, dict[str, date]]:
    horizons: dict[Family, dict[str, date]] = {family: {} for family in Family}
    for tenant, family, day in conn.execute("SELECT tenant, family, day FROM hot.sealed_through").fetchall():
        horizons[Family(family)][tenant] = day
    return horizons


def record_sealed_through(conn: duckdb.DuckDBPyConnection, tenant: str, family: Family, day: date) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO hot.sealed_through (tenant, family, day) VALUES (?, ?, ?)",
        [tenant, family.value, day],
    )


def record_partition(
    conn: duckdb.DuckDBPyConnection,
    *,
    tenant: str,
    table: str,
    day: date,
    path: str,
    rows: int,
    size: int,
    columns: list[str],
    sync_id: str,
) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO hot.sealed_partitions "
        "(tenant, table_name, day, path, rows, bytes, columns, sealed_at, sync_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, now(), ?)",
        [tenant, table, day, path, rows, size, columns, sync_id],
    )


def sealed_columns(conn: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    """Per table, every column at least one of its day files holds (missing ones read as NULL)."""
    present: dict[str, set[str]] = {}
    for table, columns in conn.execute(
        "SELECT table_name, list_distinct(flatten(list(columns))) FROM hot.sealed_partitions GROUP BY table_name"
    ).fetchall():
        present[table] = set(columns)
    return present
