"""`apply_capture`: apply one CaptureResult to the archive in ONE transaction.

Flow: the result becomes Arrow tables (frames.py, the only per-object Python work); the archived
rows of the jobs it mentions are read with one query; Polars decides what changes (reconcile.py);
the outcome is written with a handful of set-based statements from registered frames
(INSERT ... SELECT and UPDATE ... FROM), never row by row. The snapshots, most of the bytes, are
appended straight from the result's Arrow table (`_insert_snapshots` says why).

Guarantees:
* All or nothing: any exception rolls the transaction back, leaving every table as it was.
* Idempotent: re-applying a result (or another result with the same observations at the same
  instant) appends no snapshot and no status change; re-applying the same sync_id adds no
  sync_runs or rejected_records row either (`SyncSummary.replayed`).
* Tenants never mix: every read and write is keyed by the result's tenant.
* Writes go to the hot tables (`layout.hot`); once the merge is done, the days that can no
  longer change are sealed into Parquet in the same transaction (`sealing.py`), after the
  sealed-history checks of `sealed_guard.py` ran first.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import duckdb
import polars as pl

from jobs_pipeline.archive.frames import CaptureFrames, build_capture_frames
from jobs_pipeline.archive.layout import hot
from jobs_pipeline.archive.reconcile import (
    GONE_COLUMNS,
    IDENTITY_COLUMNS,
    METADATA_COLUMNS,
    STATE_COLUMNS,
    Reconciliation,
    reconcile,
)
from jobs_pipeline.archive.schema import (
    JOB_COLUMNS,
    REJECT_COLUMNS,
    SNAPSHOT_COLUMNS,
    SNAPSHOT_SOURCE_POLL,
    STATUS_CHANGE_COLUMNS,
    SYNC_RUN_COLUMNS,
    SYNC_STATUS_OK,
)
from jobs_pipeline.archive.sealed_guard import screen_sealed
from jobs_pipeline.archive.sealing import seal_ready_days
from jobs_pipeline.archive.session import query_frame
from jobs_pipeline.archive.summary import SyncSummary
from jobs_pipeline.capture.types import CaptureResult

# One row per key of the result (observations first, then vanished jobs), in the keys' order once
# sorted by `position`: the archived state lines up with the frames without a join in Polars.
# rowid lets the updates find their rows without re-joining on (tenant, job_id) strings; it is
# stable for the whole transaction: nothing deletes from `hot.jobs` before sealing, which runs after
# the updates, and this connection is the only writer (writer lock).
_ARCHIVED_SQL = """
SELECT k.job_id,
       j.rowid AS row_id,
       j.job_id IS NOT NULL AS prev_exists,
       j.user_id AS prev_user_id,
       j.target_id AS prev_target_id,
       j.job_type AS prev_job_type,
       j.status AS prev_status,
       j.status_inferred AS prev_inferred,
       j.progress AS prev_progress,
       j.error AS prev_error,
       j.metadata::VARCHAR AS prev_metadata,
       j.created_at AS prev_created_at,
       j.started_at AS prev_started_at,
       j.completed_at AS prev_completed_at,
       j.updated_at AS prev_updated_at,
       j.first_seen_at AS prev_first_seen_at,
       j.last_seen_at AS prev_last_seen_at,
       j.vanished_at AS prev_vanished_at,
       polled.job_id IS NOT NULL AS prev_polled,
       k.position
FROM {keys} AS k
LEFT JOIN hot.jobs AS j ON j.tenant = $tenant AND j.job_id = k.job_id
LEFT JOIN (
    -- Jobs a poll has seen: only those have an identity (createdAt, type, targetId) the API fixed.
    -- A job known from webhook events alone carries the events' provisional values.
    SELECT DISTINCT s.job_id FROM hot.job_snapshots AS s SEMI JOIN {keys} AS k2 ON s.job_id = k2.job_id
    WHERE s.tenant = $tenant AND s.source IS DISTINCT FROM 'webhook'
) AS polled ON polled.job_id = k.job_id
"""


# Runs after the poll's merge, in the same transaction, and may return an amended summary
# (the webhook merge: `run_sync` passes it so that a sync and its events commit together).
AlsoInTransaction = Callable[[duckdb.DuckDBPyConnection, SyncSummary], SyncSummary]


def apply_capture(
    conn: duckdb.DuckDBPyConnection, result: CaptureResult, *, also: AlsoInTransaction | None = None
) -> SyncSummary:
    """Apply one sync's result atomically; return what it changed."""
    return apply_capture_frames(conn, build_capture_frames(result), also=also)


def apply_capture_frames(
    conn: duckdb.DuckDBPyConnection, frames: CaptureFrames, *, also: AlsoInTransaction | None = None
) -> SyncSummary:
    """`apply_capture` from already-built frames (what the ingest benchmark times separately)."""
    session = _Session(conn)
    sealed_files: list[Path] = []
    conn.execute("BEGIN TRANSACTION")
    try:
        summary = _apply(session, screen_sealed(conn, frames))
        if also is not None:
            summary = also(conn, summary)
        seal = seal_ready_days(
            conn, summary.tenant, summary.sync_id, summary.observed_at, written=sealed_files
        )
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        # Day files of a transaction that did not commit lie beyond every committed horizon (no
        # view reads them), but leave the folder as it was. After a kill -9 they stay: the next
        # sync writes them again.
        for path in sealed_files:
            path.unlink(missing_ok=True)
        raise
    finally:
        session.unregister_all()
    return dataclasses.replace(summary, sealed_files=seal.files, sealed_rows=seal.rows)


class _Session:
    """Registers Polars/Arrow frames under private names and forgets them afterwards."""

    def __init__(self, conn: duckdb.DuckDBPyConnection) -> None:
        self.conn = conn
        self._names: list[str] = []

    def register(self, name: str, frame: object) -> str:
        view = f"_jobs_pipeline_merge_{name}"
        self.conn.register(view, frame)
        self._names.append(view)
        return view

    def unregister_all(self) -> None:
        for view in self._names:
            # The connection may already be closed: then there is nothing left to leak.
            with contextlib.suppress(duckdb.Error):
                self.conn.unregister(view)
        self._names.clear()


def _apply(session: _Session, frames: CaptureFrames) -> SyncSummary:
    conn, header = session.conn, frames.header
    tenant, sync_id = header.tenant, header.sync_id
    # The payload is only ever written, never compared: it stays in Arrow (see _insert_snapshots).
    observations = pl.from_arrow(frames.observations.drop_columns(["payload"]))
    vanished = pl.from_arrow(frames.vanished)
    assert isinstance(observations, pl.DataFrame) and isinstance(vanished, pl.DataFrame)

    replayed = _already_applied(conn, tenant, sync_id)
    keys = pl.concat([observations.select("job_id"), vanished.select("job_id")]).with_row_index("position")
    keys_view = session.register("keys", keys)
    archived = (
        query_frame(conn, _ARCHIVED_SQL.format(keys=keys_view), {"tenant": tenant})
        .sort("position")
        .drop("position")
    )
    plan = reconcile(
        observations,
        archived.head(observations.height),
        vanished,
        archived.tail(vanished.height),
        tenant=tenant,
        sync_id=sync_id,
    )

    snapshots = _insert_snapshots(session, frames, plan.snapshot_rows)
    _insert(session, "jobs", plan.new_jobs, JOB_COLUMNS)
    _update_jobs(session, "state", plan.state_updates, STATE_COLUMNS)
    _update_jobs(session, "metadata", plan.metadata_updates, METADATA_COLUMNS)
    _update_jobs(session, "identity", plan.identity_updates, IDENTITY_COLUMNS)
    _update_jobs(session, "killed", plan.killed, GONE_COLUMNS, killed=True)
    _update_jobs(session, "expired", plan.expired, GONE_COLUMNS)
    _insert(session, "job_status_changes", plan.changes, STATUS_CHANGE_COLUMNS)

    reject_rows = _with_conflicts(frames, plan)
    rejects = reject_rows.height
    warnings = _warnings(plan, rejects)
    if not replayed:
        reject_rows = reject_rows.select(
            tenant=pl.lit(tenant),
            sync_id=pl.lit(sync_id),
            observed_at=pl.lit(header.observed_at, pl.Datetime("us", "UTC")),
            job_id="job_id",
            reason="reason",
            payload="payload",
        )
        _insert(session, "rejected_records", reject_rows, REJECT_COLUMNS)
        _insert_sync_run(conn, frames, plan, warnings, rejects)

    return SyncSummary(
        sync_id=sync_id,
        tenant=tenant,
        observed_at=header.observed_at,
        requests=header.requests,
        pages=header.pages,
        jobs_seen=plan.jobs_seen,
        jobs_new=plan.jobs_new,
        jobs_changed=plan.jobs_changed,
        jobs_vanished=plan.killed.height + plan.expired.height,
        jobs_killed=plan.killed.height,
        jobs_expired=plan.expired.height,
        coverage_complete=header.coverage_complete,
        gaps=header.gaps,
        rejects=rejects,
        rate_limited=header.rate_limited,
        snapshots=snapshots,
        status_changes=plan.changes.height,
        corrections=plan.corrections,
        stale_ignored=plan.stale_ignored,
        replayed=replayed,
        warnings=tuple(warnings),
        plan_notes=dict(header.plan_notes),
    )


def _with_conflicts(frames: CaptureFrames, plan: Reconciliation) -> pl.DataFrame:
    """The result's rejects plus the observations that contradict an immutable field (immutable.py)."""
    rejects = pl.from_arrow(frames.rejects)
    assert isinstance(rejects, pl.DataFrame)
    if not plan.conflict_rows.any():
        return rejects
    conflicting = pl.from_arrow(
        frames.observations.select(["job_id", "payload"]).filter(plan.conflict_rows.to_arrow())
    )
    assert isinstance(conflicting, pl.DataFrame)
    conflicting = conflicting.select("job_id", reason=plan.conflict_reasons, payload="payload")
    return pl.concat([rejects, conflicting.cast(rejects.schema)], how="vertical")


def _already_applied(conn: duckdb.DuckDBPyConnection, tenant: str, sync_id: str) -> bool:
    # fetchall, not fetchone: DuckDB 2 refuses register() while an execute() result is unfinished.
    rows = conn.execute(
        f"SELECT count(*) FROM {hot('sync_runs')} WHERE tenant = ? AND sync_id = ?", [tenant, sync_id]
    ).fetchall()
    return bool(rows[0][0])


def _insert(session: _Session, table: str, frame: pl.DataFrame, columns: Sequence[str]) -> None:
    if frame.height == 0:
        return
    # One chunk, so DuckDB appends it as one run of row groups: a frame out of Polars' lazy engine
    # is often split in several, each of which would leave a partly filled row group behind for
    # every later CHECKPOINT to compact (see _insert_snapshots).
    view = session.register(table, frame.rechunk())
    names = ", ".join(columns)
    session.conn.execute(f"INSERT INTO {hot(table)} ({names}) SELECT {names} FROM {view}")


def _insert_snapshots(session: _Session, frames: CaptureFrames, rows: pl.Series) -> int:
    """Append the selected observations to job_snapshots straight from the result's Arrow table.

    Why not from a Polars frame like the other tables: the payloads are most of the bytes, and a
    Polars frame handed to DuckDB is converted back to Arrow (every string copied); worse, a frame
    out of Polars' lazy engine comes in several chunks, which DuckDB appends in parallel as several
    partly filled row groups that the next CHECKPOINT must rewrite to compact them (the ingest
    benchmark's checkpoints took 1.7x as long). The Arrow table is one chunk (frames.py builds it
    so, up to 2 GiB of JSON), and the constant columns are query parameters.
    """
    count = int(rows.sum())
    if count == 0:
        return 0
    table = frames.observations
    if count < table.num_rows:
        table = table.filter(rows.to_arrow())
    view = session.register("job_snapshots", table)
    header = frames.header
    observed = [c for c in SNAPSHOT_COLUMNS if c not in ("tenant", "sync_id", "source")]
    session.conn.execute(
        f"INSERT INTO {hot('job_snapshots')} (tenant, sync_id, source, {', '.join(observed)}) "
        f"SELECT $tenant, $sync_id, $source, {', '.join(observed)} FROM {view}",
        {"tenant": header.tenant, "sync_id": header.sync_id, "source": SNAPSHOT_SOURCE_POLL},
    )
    return count


def _update_jobs(
    session: _Session, name: str, rows: pl.DataFrame, columns: Sequence[str], *, killed: bool = False
) -> None:
    """UPDATE jobs rows (found by rowid) from a frame holding `row_id` and the given columns."""
    if rows.height == 0:
        return
    view = session.register(f"update_{name}", rows)
    assignments = [f"{c} = u.{c}" for c in columns]
    if killed:
        assignments = ["status = 'KILLED'", "status_inferred = true", *assignments]
    session.conn.execute(
        f"UPDATE {hot('jobs')} SET {', '.join(assignments)} FROM {view} AS u WHERE jobs.rowid = u.row_id"
    )


def _insert_sync_run(
    conn: duckdb.DuckDBPyConnection,
    frames: CaptureFrames,
    plan: Reconciliation,
    warnings: list[str],
    rejects: int,
) -> None:
    header = frames.header
    values = {
        "tenant": header.tenant,
        "sync_id": header.sync_id,
        "started_at": header.started_at,
        "finished_at": header.finished_at,
        "observed_at": header.observed_at,
        "requests": header.requests,
        "pages": header.pages,
        "jobs_seen": plan.jobs_seen,
        "jobs_new": plan.jobs_new,
        "jobs_changed": plan.jobs_changed,
        "jobs_vanished": plan.killed.height + plan.expired.height,
        "coverage_complete": header.coverage_complete,
        "gaps": json.dumps([gap.as_json() for gap in header.gaps]),
        "status": SYNC_STATUS_OK,
        "error": "; ".join(warnings) or None,
        "rate_limited": header.rate_limited,
        "rejects": rejects,
        "plan_notes": json.dumps(dict(sorted(header.plan_notes.items()))),
    }
    assert tuple(values) == SYNC_RUN_COLUMNS
    names = ", ".join(values)
    placeholders = ", ".join(f"${name}" for name in values)
    conn.execute(f"INSERT INTO {hot('sync_runs')} ({names}) VALUES ({placeholders})", values)


def _warnings(plan: Reconciliation, rejects: int) -> list[str]:
    warnings = []
    if rejects:
        warnings.append(f"{rejects} record(s) rejected, kept in rejected_records")
    if plan.stale_ignored:
        warnings.append(f"{plan.stale_ignored} observation(s) older than the archived state ignored")
    if plan.unknown_vanished:
        warnings.append(f"{plan.unknown_vanished} vanished job(s) unknown to the archive ignored")
    return warnings


def _rollback(conn: duckdb.DuckDBPyConnection) -> None:
    # A failed COMMIT has already ended the transaction: nothing to roll back then.
    with contextlib.suppress(duckdb.Error):
        conn.execute("ROLLBACK")
