"""The archive's current table contract, as names: what analysts, the merge and external checks rely on.

The DDL that creates these tables lives in `ddl.py` and `hot_split.py` (frozen per version); this
module is the single place the code names columns, and the tests check both agree after migrating.
Since schema version 4 the archive tables are views in schema `main` over schema `hot` and the
sealed Parquet day files (`layout.py`); the names and columns here are what analysts see.
"""

from __future__ import annotations

SCHEMA_VERSION = 6

SYNC_RUN_COLUMNS: tuple[str, ...] = (
    "tenant",
    "sync_id",
    "started_at",
    "finished_at",
    "observed_at",
    "requests",
    "pages",
    "jobs_seen",
    "jobs_new",
    "jobs_changed",
    "jobs_vanished",
    "coverage_complete",
    "gaps",
    "status",
    "error",
    "rate_limited",
    "rejects",
    "plan_notes",
)

SNAPSHOT_COLUMNS: tuple[str, ...] = (
    "tenant",
    "sync_id",
    "job_id",
    "observed_at",
    "status",
    "progress",
    "updated_at",
    "error",
    "metadata",
    "payload",
    "source",
)

JOB_COLUMNS: tuple[str, ...] = (
    "tenant",
    "job_id",
    "user_id",
    "target_id",
    "job_type",
    "status",
    "status_inferred",
    "progress",
    "error",
    "metadata",
    "created_at",
    "started_at",
    "completed_at",
    "updated_at",
    "first_seen_at",
    "last_seen_at",
    "vanished_at",
    "last_sync_id",
)

STATUS_CHANGE_COLUMNS: tuple[str, ...] = (
    "tenant",
    "job_id",
    "from_status",
    "to_status",
    "changed_at",
    "changed_after",
    "changed_before",
    "source",
    "sync_id",
    "step",
)

REJECT_COLUMNS: tuple[str, ...] = ("tenant", "sync_id", "observed_at", "job_id", "reason", "payload")

SCHEMA_VERSION_COLUMNS: tuple[str, ...] = ("tenant", "version", "applied_at", "description")

# The manifest of sealed Parquet day files (schema version 4; see archive/layout.py).
SEALED_PARTITION_COLUMNS: tuple[str, ...] = (
    "tenant",
    "table_name",
    "day",
    "path",
    "rows",
    "bytes",
    "columns",
    "sealed_at",
    "sync_id",
)

WEBHOOK_EVENT_COLUMNS: tuple[str, ...] = (
    "tenant",
    "event_key",
    "sync_id",
    "observed_at",
    "received_at",
    "job_id",
    "status",
    "occurred_at",
    "outcome",
    "payload",
)

TABLES: dict[str, tuple[str, ...]] = {
    "schema_version": SCHEMA_VERSION_COLUMNS,
    "sync_runs": SYNC_RUN_COLUMNS,
    "job_snapshots": SNAPSHOT_COLUMNS,
    "jobs": JOB_COLUMNS,
    "job_status_changes": STATUS_CHANGE_COLUMNS,
    "rejected_records": REJECT_COLUMNS,
    "sealed_partitions": SEALED_PARTITION_COLUMNS,
    "webhook_events": WEBHOOK_EVENT_COLUMNS,
}

# Values of job_status_changes.source.
SOURCE_API_TIMESTAMP = "api_timestamp"
SOURCE_POLL_INTERVAL = "poll_interval"
SOURCE_INFERRED = "inferred"
SOURCE_CORRECTION = "correction"
SOURCE_WEBHOOK = "webhook"  # also a value of job_snapshots.source

# Values of job_snapshots.source.
SNAPSHOT_SOURCE_POLL = "poll"

SYNC_STATUS_OK = "ok"
