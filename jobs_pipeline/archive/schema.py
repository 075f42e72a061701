"""The archive's current table contract, as names: what analysts, the merge and external checks rely on.

The DDL that creates these tables lives in `ddl.py` (frozen per version); this module is the
single place the code names columns, and the tests check both agree after migrating.
"""

from __future__ import annotations

SCHEMA_VERSION = 4

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

TABLES: dict[str, tuple[str, ...]] = {
    "schema_version": SCHEMA_VERSION_COLUMNS,
    "sync_runs": SYNC_RUN_COLUMNS,
    "job_snapshots": SNAPSHOT_COLUMNS,
    "jobs": JOB_COLUMNS,
    "job_status_changes": STATUS_CHANGE_COLUMNS,
    "rejected_records": REJECT_COLUMNS,
}

# Values of job_status_changes.source.
SOURCE_API_TIMESTAMP = "api_timestamp"
SOURCE_POLL_INTERVAL = "poll_interval"
SOURCE_INFERRED = "inferred"
SOURCE_CORRECTION = "correction"

SYNC_STATUS_OK = "ok"
