"""What the archive knows of one tenant, as the planner's input: `load_capture_state` (`CaptureState`)
and `load_open_gaps` (what the last sync could not see, to look at again)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import duckdb
import polars as pl

from jobs_pipeline.api.models import RETENTION_HOURS
from jobs_pipeline.archive.schema import SYNC_STATUS_OK
from jobs_pipeline.archive.session import query_frame
from jobs_pipeline.capture.types import CaptureState, Gap, KnownJob

# Jobs created this long before the last sync may still be in the API's window at the next one;
# the margin absorbs clock skew between syncs. Everything here reads the HOT tables only: the latest
# sync and every job this young are never sealed (layout.seal_through keeps 24 h + 1 h back).
KNOWN_WINDOW = timedelta(hours=RETENTION_HOURS, minutes=10)

_LAST_SYNC_SQL = f"""
SELECT observed_at, coverage_complete
FROM hot.sync_runs
WHERE tenant = $tenant AND status = '{SYNC_STATUS_OK}'
ORDER BY observed_at DESC, finished_at DESC
LIMIT 1
"""

# Timestamps leave DuckDB as epoch microseconds: turning ints into datetimes in Python is several
# times faster than letting the driver build zone-aware datetimes one by one.
_KNOWN_SQL = """
SELECT job_id, target_id, job_type, status,
       epoch_us(created_at) AS created_us,
       epoch_us(updated_at) AS updated_us,
       epoch_us(last_seen_at) AS last_seen_us
FROM hot.jobs
WHERE tenant = $tenant AND vanished_at IS NULL AND created_at >= $since
"""


def load_capture_state(conn: duckdb.DuckDBPyConnection, tenant: str) -> CaptureState:
    rows = conn.execute(_LAST_SYNC_SQL, {"tenant": tenant}).fetchall()
    if not rows:
        return CaptureState(tenant=tenant, last_observed_at=None, last_coverage_complete=False, known={})
    last_observed_at, last_coverage_complete = _as_utc(rows[0][0]), bool(rows[0][1])
    known = query_frame(conn, _KNOWN_SQL, {"tenant": tenant, "since": last_observed_at - KNOWN_WINDOW})
    return CaptureState(
        tenant=tenant,
        last_observed_at=last_observed_at,
        last_coverage_complete=last_coverage_complete,
        known=_known_jobs(known),
    )


def load_open_gaps(conn: duckdb.DuckDBPyConnection, tenant: str) -> list[Gap]:
    """The gaps the tenant's last sync recorded: the next sync looks into them again."""
    # fetchall, not fetchone: DuckDB 2 refuses new work on a connection with an unfinished result.
    rows = conn.execute(
        "SELECT gaps FROM hot.sync_runs WHERE tenant = ? ORDER BY observed_at DESC, finished_at DESC LIMIT 1",
        [tenant],
    ).fetchall()
    if not rows or rows[0][0] is None:
        return []
    row = rows[0]
    return [
        Gap(
            slice=g["slice"],
            reason=g["reason"],
            created_from=datetime.fromisoformat(g["created_from"]) if g.get("created_from") else None,
            created_to=datetime.fromisoformat(g["created_to"]) if g.get("created_to") else None,
        )
        for g in json.loads(row[0])
    ]


def _known_jobs(rows: pl.DataFrame) -> dict[str, KnownJob]:
    # Column lists + zip beat row iteration; KnownJob's frozen __init__ is the remaining cost.
    job_ids, target_ids, job_types, statuses = (
        rows[name].to_list() for name in ("job_id", "target_id", "job_type", "status")
    )
    created, updated, last_seen = (
        [_from_epoch_us(us) for us in rows[name].to_list()]
        for name in ("created_us", "updated_us", "last_seen_us")
    )
    return {
        job_id: KnownJob(
            job_id=job_id,
            target_id=target_id,
            job_type=job_type,
            status=status,
            created_at=created_at,
            updated_at=updated_at,
            last_seen_at=last_seen_at,
        )
        for job_id, target_id, job_type, status, created_at, updated_at, last_seen_at in zip(
            job_ids, target_ids, job_types, statuses, created, updated, last_seen, strict=True
        )
    }


def _from_epoch_us(micros: int) -> datetime:
    # Exact: a double holds any epoch microsecond of this era well within half a microsecond,
    # and fromtimestamp rounds to the nearest microsecond.
    return datetime.fromtimestamp(micros / 1_000_000, UTC)


def _as_utc(value: datetime) -> datetime:
    # DuckDB returns TIMESTAMPTZ in the session's zone; the capture layer works in UTC.
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
