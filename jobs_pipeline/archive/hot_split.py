"""Schema version 4: split the archive tables into a hot store and sealed day files.

Moves `jobs`, `job_snapshots`, `job_status_changes`, `sync_runs` and `rejected_records` from schema
`main` into schema `hot` (same columns, constraints, comments and rows), creates the sealed-file
bookkeeping (`manifest.py`) and puts a view of the same name in `main` (`views.py`). Analysts'
queries do not change; the writer writes `hot.<table>` from then on. Nothing is sealed here: the
next syncs seal the days that are old enough, a bounded number per sync (`sealing.py`).

DuckDB has no `ALTER TABLE ... SET SCHEMA`, so each table is re-created from its own stored
definition (`duckdb_tables().sql`), filled with INSERT ... SELECT and the old one dropped, all in
the migration's transaction.
"""

from __future__ import annotations

import duckdb

from jobs_pipeline.archive.layout import HOT_SCHEMA
from jobs_pipeline.archive.sqltext import sql_literal
from jobs_pipeline.archive.views import refresh_views

# Frozen: the archive tables as of schema version 3 (later versions create theirs in hot directly).
V4_MOVED_TABLES = ("jobs", "job_snapshots", "job_status_changes", "sync_runs", "rejected_records")

BOOKKEEPING_DDL = r"""
CREATE TABLE hot.archive_settings (
    tenant VARCHAR NOT NULL DEFAULT '*',
    key    VARCHAR NOT NULL PRIMARY KEY,
    value  VARCHAR NOT NULL
);
COMMENT ON TABLE hot.archive_settings IS 'Writer settings of this archive (sealed_root: the folder of the sealed day files, absolute).';
COMMENT ON COLUMN hot.archive_settings.tenant IS 'Always ''*'': a setting applies to the whole store. Present only so that every archive table starts with tenant.';
COMMENT ON COLUMN hot.archive_settings.key IS 'Setting name.';
COMMENT ON COLUMN hot.archive_settings.value IS 'Setting value.';

CREATE TABLE hot.sealed_through (
    tenant VARCHAR NOT NULL,
    family VARCHAR NOT NULL,
    day    DATE NOT NULL,
    PRIMARY KEY (tenant, family)
);
COMMENT ON TABLE hot.sealed_through IS 'Per tenant and table family, the last UTC day that is sealed: its rows live only in the Parquet day files and can no longer change.';
COMMENT ON COLUMN hot.sealed_through.tenant IS 'Which API key''s data.';
COMMENT ON COLUMN hot.sealed_through.family IS 'job (jobs, job_snapshots, job_status_changes: day = the job''s created day) or log (sync_runs, rejected_records: day = the sync''s observed day).';
COMMENT ON COLUMN hot.sealed_through.day IS 'Last sealed day (inclusive, UTC).';

CREATE TABLE hot.sealed_partitions (
    tenant     VARCHAR NOT NULL,
    table_name VARCHAR NOT NULL,
    day        DATE NOT NULL,
    path       VARCHAR NOT NULL,
    rows       BIGINT NOT NULL,
    bytes      BIGINT NOT NULL,
    columns    VARCHAR[] NOT NULL,
    sealed_at  TIMESTAMPTZ NOT NULL,
    sync_id    VARCHAR NOT NULL,
    PRIMARY KEY (tenant, table_name, day)
);
COMMENT ON TABLE hot.sealed_partitions IS 'One row per sealed Parquet day file (ZSTD, hive-style tenant=/day= folders): the immutable part of the archive tables.';
COMMENT ON COLUMN hot.sealed_partitions.tenant IS 'Which API key''s data (the tenant= folder).';
COMMENT ON COLUMN hot.sealed_partitions.table_name IS 'The archive table the file belongs to (jobs, job_snapshots, job_status_changes, sync_runs, rejected_records).';
COMMENT ON COLUMN hot.sealed_partitions.day IS 'The UTC day of the file (the day= folder): created day of the job for job tables, observed day of the sync for log tables.';
COMMENT ON COLUMN hot.sealed_partitions.path IS 'File path relative to the sealed folder (archive_settings.sealed_root).';
COMMENT ON COLUMN hot.sealed_partitions.rows IS 'Rows in the file.';
COMMENT ON COLUMN hot.sealed_partitions.bytes IS 'File size in bytes.';
COMMENT ON COLUMN hot.sealed_partitions.columns IS 'Columns stored in the file (tenant and day come from the folder names).';
COMMENT ON COLUMN hot.sealed_partitions.sealed_at IS 'When the file was sealed (writer''s clock, UTC).';
COMMENT ON COLUMN hot.sealed_partitions.sync_id IS 'The sync whose transaction sealed the file (sync_runs.sync_id).';
"""


def split_hot_and_sealed(conn: duckdb.DuckDBPyConnection) -> None:
    """Migration step 4 (runs inside the migration's transaction)."""
    conn.execute(f"CREATE SCHEMA {HOT_SCHEMA}")
    for table in V4_MOVED_TABLES:
        _move_to_hot(conn, table)
    conn.execute(BOOKKEEPING_DDL)
    refresh_views(conn)


def _move_to_hot(conn: duckdb.DuckDBPyConnection, table: str) -> None:
    ((definition, comment),) = conn.execute(
        "SELECT sql, comment FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = 'main' AND table_name = ?",
        [table],
    ).fetchall()
    prefix = f"CREATE TABLE {table}("
    if not definition.startswith(prefix):  # pragma: no cover - DuckDB changed how it stores DDL
        raise RuntimeError(f"unexpected stored definition of {table}: {definition[:80]!r}")
    conn.execute(f"CREATE TABLE {HOT_SCHEMA}.{table}(" + definition[len(prefix) :])
    conn.execute(f"INSERT INTO {HOT_SCHEMA}.{table} SELECT * FROM main.{table}")
    if comment:
        conn.execute(f"COMMENT ON TABLE {HOT_SCHEMA}.{table} IS {sql_literal(comment)}")
    for column, column_comment in conn.execute(
        "SELECT column_name, comment FROM duckdb_columns() WHERE database_name = current_database() "
        "AND schema_name = 'main' AND table_name = ? AND comment IS NOT NULL",
        [table],
    ).fetchall():
        conn.execute(f'COMMENT ON COLUMN {HOT_SCHEMA}.{table}."{column}" IS {sql_literal(column_comment)}')
    conn.execute(f"DROP TABLE main.{table}")
