"""Ordered, numbered schema migrations and the runner that brings an archive file up to date.

Each migration runs in its own transaction together with its `schema_version` row, so an
interrupted upgrade leaves the archive at the previous version, never half-migrated.
An archive NEWER than this code is refused before anything is written (`ArchiveVersionError`):
old code must not write rows a newer schema would misread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb

from jobs_pipeline.archive import ddl
from jobs_pipeline.archive.errors import ArchiveError, ArchiveVersionError
from jobs_pipeline.archive.hot_split import split_hot_and_sealed
from jobs_pipeline.archive.schema import SCHEMA_VERSION
from jobs_pipeline.archive.views import refresh_views


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    # Plain SQL, or a step that needs to read the archive to know what to do (never both).
    sql: str = ""
    step: Callable[[duckdb.DuckDBPyConnection], None] | None = None

    def apply(self, conn: duckdb.DuckDBPyConnection) -> None:
        if self.step is not None:
            self.step(conn)
        else:
            conn.execute(self.sql)


def add_webhook_events(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(ddl.V5_WEBHOOK_EVENTS)
    refresh_views(conn)  # the new column and table reach the analyst views


def add_plan_notes(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(ddl.V6_PLAN_NOTES)
    refresh_views(conn)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial schema", ddl.V1_INITIAL),
    Migration(2, "rejected_records; sync_runs.rate_limited and rejects", ddl.V2_REJECTS_AND_RATE_LIMITS),
    Migration(3, "sync_runs.gaps comment lists every gap reason", ddl.V3_GAP_REASONS),
    Migration(
        4,
        "archive tables split into schema hot and sealed Parquet day files, main names become views",
        step=split_hot_and_sealed,
    ),
    Migration(5, "webhook events: job_snapshots.source, webhook_events", step=add_webhook_events),
    Migration(6, "sync_runs.plan_notes: the capture planner's decisions per sync", step=add_plan_notes),
)

if [m.version for m in MIGRATIONS] != list(range(1, SCHEMA_VERSION + 1)):  # pragma: no cover
    raise RuntimeError("MIGRATIONS must be numbered 1..SCHEMA_VERSION without gaps")


def schema_version(conn: duckdb.DuckDBPyConnection) -> int:
    """The archive's schema version: 0 for an empty database; ArchiveError for a foreign database."""
    tables = {
        name
        for (name,) in conn.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() AND NOT internal"
        ).fetchall()
    }
    if "schema_version" not in tables:
        if tables:
            raise ArchiveError(
                f"this DuckDB file is not a jobs_pipeline archive (it has tables {sorted(tables)} "
                "but no schema_version); point --db at a new file"
            )
        return 0
    ((version,),) = conn.execute("SELECT max(version) FROM schema_version").fetchall()
    return int(version) if version is not None else 0


def migrate(conn: duckdb.DuckDBPyConnection, *, archive_label: str = "the archive") -> tuple[int, int]:
    """Apply every pending migration in order; return (version before, version after)."""
    before = schema_version(conn)
    if before > SCHEMA_VERSION:
        raise ArchiveVersionError(
            f"{archive_label} has schema version {before} but this jobs_pipeline only knows up to "
            f"version {SCHEMA_VERSION}: it was written by a newer release; upgrade jobs_pipeline "
            "(nothing was written)"
        )
    for migration in MIGRATIONS:
        if migration.version <= before:
            continue
        conn.execute("BEGIN TRANSACTION")
        try:
            migration.apply(conn)
            conn.execute(
                "INSERT INTO schema_version (tenant, version, applied_at, description) VALUES ('*', ?, ?, ?)",
                [migration.version, datetime.now(UTC), migration.description],
            )
            conn.execute("COMMIT")
        except Exception as exc:
            conn.execute("ROLLBACK")
            raise ArchiveError(
                f"migrating {archive_label} to schema version {migration.version} failed: {exc}"
            ) from exc
    return before, SCHEMA_VERSION
