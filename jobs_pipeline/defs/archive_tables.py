"""The archive's tables as assets downstream of `capture`: schema, comments and row counts.

`capture` writes them (one transaction per sync); these assets only READ the published copy
(open_for_analysis: no writer lock, so they never delay a sync and are not in the archive pool).
Their column schema is known before the first run too: it is read from an in-memory archive
migrated to the current version, so the UI shows every column and its COMMENT from the start.
"""

# No `from __future__ import annotations` here: Dagster inspects the `context` annotation at
# decoration time and does not resolve string annotations.

from collections.abc import Iterator
from contextlib import closing

import dagster as dg
import duckdb

from jobs_pipeline.archive.migrations import migrate
from jobs_pipeline.defs.names import ARCHIVE_GROUP
from jobs_pipeline.defs.resources import JobsArchiveResource

# table -> what an analyst should know first (the full story is in each table's COMMENT ON).
ARCHIVE_TABLES: dict[str, str] = {
    "jobs": (
        "Current state of every job ever seen, one row per (tenant, job_id): latest status (KILLED is "
        "inferred when a job vanishes early), timestamps, first/last sighting."
    ),
    "job_snapshots": (
        "Append-only history: one row each time a sync saw a job new or changed. Never updated or deleted."
    ),
    "job_status_changes": (
        "Status transitions per job, with when they happened (from API timestamps, or bounded by the polls)."
    ),
    "sync_runs": (
        "One row per applied sync: requests, pages, jobs seen/new/changed/vanished, coverage and gaps. "
        "Failed syncs write nothing, so they never appear here."
    ),
    "rejected_records": "Records the API returned that could not be parsed, kept verbatim with the reason.",
    "webhook_events": (
        "Every webhook job-status event a sync applied, once, with what it did (applied, created, refined, "
        "stale, rejected)."
    ),
}


def table_schema(conn: duckdb.DuckDBPyConnection, table: str) -> dg.TableSchema:
    """The table's columns, DuckDB types and COMMENTs, in column order."""
    rows = conn.execute(
        """
        SELECT column_name, data_type, coalesce(comment, ''), is_nullable
        FROM duckdb_columns()
        WHERE database_name = current_database() AND schema_name = 'main' AND table_name = ?
        ORDER BY column_index
        """,
        [table],
    ).fetchall()
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=name,
                type=str(data_type),
                description=comment or None,
                constraints=dg.TableColumnConstraints(nullable=bool(nullable)),
            )
            for name, data_type, comment, nullable in rows
        ]
    )


def rows_per_tenant(conn: duckdb.DuckDBPyConnection, table: str) -> dict[str, int]:
    rows = conn.execute(f"SELECT tenant, count(*) FROM {table} GROUP BY tenant ORDER BY tenant").fetchall()
    return {str(tenant): int(count) for tenant, count in rows}


def _current_schemas() -> dict[str, dg.TableSchema]:
    with closing(duckdb.connect(":memory:")) as conn:
        migrate(conn)
        return {table: table_schema(conn, table) for table in ARCHIVE_TABLES}


_SCHEMAS = _current_schemas()


@dg.multi_asset(
    name="archive_tables",
    specs=[
        dg.AssetSpec(
            table,
            deps=["capture"],
            group_name=ARCHIVE_GROUP,
            description=description,
            kinds={"duckdb", "table"},
            metadata={
                "dagster/column_schema": _SCHEMAS[table],
                "dagster/table_name": f"archive.main.{table}",
            },
        )
        for table, description in ARCHIVE_TABLES.items()
    ],
    can_subset=True,
)
def archive_tables(
    context: dg.AssetExecutionContext, archive: JobsArchiveResource
) -> Iterator[dg.MaterializeResult]:
    """Record schema and row counts of the published copy, as of the sync just applied."""
    with closing(archive.open_for_reading()) as conn:
        for key in context.selected_asset_keys:
            table = key.to_user_string()
            per_tenant = rows_per_tenant(conn, table)
            yield dg.MaterializeResult(
                asset_key=key,
                metadata={
                    "dagster/column_schema": table_schema(conn, table),
                    "dagster/row_count": sum(per_tenant.values()),
                    "rows_per_tenant": dg.MetadataValue.json(per_tenant),
                },
            )
