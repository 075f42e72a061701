"""Merge drained webhook events into the archive, inside the applying sync's transaction.

Called by `apply_capture` (through `run_sync`) after the poll's own merge, on the same connection
and before COMMIT: either the sync and its events are all recorded, or none of it. Every row
written is filed under the applying sync (sync_id and its observed_at): that is how the storage
layout partitions log rows.

Rules, per job, events in order of their own time (then lifecycle rank), so deliveries that
arrive out of order are applied in the order they happened:
* An event already drained (same body: `webhook_events.event_key`) is skipped: draining twice,
  or a duplicate delivery, changes nothing.
* An event NEWER than the archived state (ordered like the poll merge: time, lifecycle rank)
  appends a `source = 'webhook'` snapshot, updates the job and appends the status changes it
  reveals, dated exactly from the event (steps skipped in between dated from the job's own
  timestamps when the event carries them, else bounded by the two states).
* An event for a job the archive never saw creates the job (`outcome = 'created'`): it is
  partially known (no poll snapshot) until a poll sees it, and that poll's merge then fills in
  what the event did not say (createdAt, user, ...), like any other change.
* An event NOT newer than the archived state adds no snapshot and no change; when the archive
  holds that very transition without an exact time (poll_interval, or an inferred KILLED), the
  event dates it (`outcome = 'refined'`; the row's source becomes 'webhook').
* A KILLED event for a job the poll inferred KILLED makes it an observed KILLED with its exact time.
* Unreadable events, and events dated before the hot window (`HOT_WINDOW` before the sync's
  server time, rows there may already be sealed), go to `rejected_records`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import duckdb
import orjson
import polars as pl

from jobs_pipeline.api.models import RETENTION_HOURS
from jobs_pipeline.archive.layout import Family, day_start
from jobs_pipeline.archive.lifecycle import COMPLETED_AT, CREATED_AT, STARTED_AT, lifecycle_steps, rank
from jobs_pipeline.archive.manifest import sealed_through
from jobs_pipeline.archive.schema import (
    JOB_COLUMNS,
    REJECT_COLUMNS,
    SNAPSHOT_COLUMNS,
    SOURCE_WEBHOOK,
    STATUS_CHANGE_COLUMNS,
    WEBHOOK_EVENT_COLUMNS,
)
from jobs_pipeline.archive.summary import WebhookSummary
from jobs_pipeline.archive.transitions import UTC_MICROS
from jobs_pipeline.archive.webhook_writes import WebhookWrites
from jobs_pipeline.webhook.events import EventError, JobEvent, parse_event
from jobs_pipeline.webhook.spool import KIND_EVENT, SpoolRecord

# Events older than this before the applying sync's server time are rejected (an event that late
# is not news). Events about jobs that may be on a sealed day are rejected too (`_hot_horizon`):
# their rows could no longer be written.
HOT_WINDOW = timedelta(hours=48)

OUTCOME_APPLIED = "applied"
OUTCOME_CREATED = "created"
OUTCOME_REFINED = "refined"
OUTCOME_STALE = "stale"
OUTCOME_REJECTED = "rejected"

_UNKNOWN_TYPE = "UNKNOWN"
_STATE_COLUMNS = (
    "status",
    "status_inferred",
    "progress",
    "error",
    "metadata",
    "started_at",
    "completed_at",
    "updated_at",
    "last_sync_id",
)


@dataclass
class _Job:
    """The archived (or, for a new job, the about-to-be-inserted) state of one job."""

    status: str
    updated_at: datetime
    row: dict[str, Any]
    row_id: int | None  # None: created by this merge
    changed: bool = False
    inexact_changes: dict[str, int] = field(default_factory=dict)  # to_status -> rowid


def merge_webhook_events(
    conn: duckdb.DuckDBPyConnection,
    records: list[SpoolRecord],
    *,
    tenant: str,
    sync_id: str,
    observed_at: datetime,
) -> WebhookSummary:
    """Apply the records (inside the caller's transaction); return what they did."""
    if not records:
        return WebhookSummary()
    writes = WebhookWrites(conn)
    try:
        return _Merge(writes, tenant, sync_id, observed_at).run(records)
    finally:
        writes.close()


def _hot_horizon(conn: duckdb.DuckDBPyConnection, tenant: str, observed_at: datetime) -> datetime:
    """The oldest event time the merge accepts: within HOT_WINDOW of the sync, and late enough that
    its job cannot be on a sealed day (a job changes only in the 24 h after its creation, so an
    event at t is about a job created after t - 24 h; sealed jobs were created before `boundary`)."""
    horizon = observed_at - HOT_WINDOW
    sealed = sealed_through(conn, tenant, Family.JOB)
    if sealed is not None:
        boundary = day_start(sealed + timedelta(days=1))
        horizon = max(horizon, boundary + timedelta(hours=RETENTION_HOURS))
    return horizon


class _Merge:
    def __init__(self, writes: WebhookWrites, tenant: str, sync_id: str, observed_at: datetime) -> None:
        self.w = writes
        self.tenant = tenant
        self.sync_id = sync_id
        self.observed_at = observed_at
        self.horizon = _hot_horizon(writes.conn, tenant, observed_at)
        self.events_rows: list[dict[str, Any]] = []
        self.reject_rows: list[dict[str, Any]] = []
        self.snapshot_rows: list[dict[str, Any]] = []
        self.change_rows: list[dict[str, Any]] = []
        self.datings: list[dict[str, Any]] = []
        self.counts: dict[str, int] = defaultdict(int)

    def run(self, records: list[SpoolRecord]) -> WebhookSummary:
        fresh = self._fresh(records)
        parsed: list[tuple[SpoolRecord, JobEvent]] = []
        for record in fresh:
            event = self._parse(record)
            if event is not None:
                parsed.append((record, event))
        jobs = self._load(parsed)
        steps = self._next_steps(parsed)
        by_job: dict[str, list[tuple[SpoolRecord, JobEvent]]] = defaultdict(list)
        for record, event in parsed:
            by_job[event.job_id].append((record, event))
        for job_id, events in by_job.items():
            events.sort(key=lambda pair: (_when(*pair), rank(pair[1].status)))
            for record, event in events:
                outcome = self._apply(jobs, job_id, record, event, steps)
                self._remember(record, event, outcome)
        self._write(jobs)
        return WebhookSummary(
            drained=len(records),
            duplicates=len(records) - len(fresh),
            applied=self.counts[OUTCOME_APPLIED],
            created=self.counts[OUTCOME_CREATED],
            refined=self.counts[OUTCOME_REFINED],
            stale=self.counts[OUTCOME_STALE],
            rejected=self.counts[OUTCOME_REJECTED],
            snapshots=len(self.snapshot_rows),
            status_changes=len(self.change_rows),
        )

    # -- reading ----------------------------------------------------------------------------------

    def _fresh(self, records: list[SpoolRecord]) -> list[SpoolRecord]:
        keys = pl.DataFrame({"event_key": sorted({r.key for r in records})}, schema={"event_key": pl.String})
        known = self.w.known_keys(self.tenant, keys)
        fresh: list[SpoolRecord] = []
        for record in records:
            if record.key in known:
                continue
            known.add(record.key)
            fresh.append(record)
        return fresh

    def _parse(self, record: SpoolRecord) -> JobEvent | None:
        reason = record.reason or "rejected by the receiver"
        event: JobEvent | None = None
        if record.kind == KIND_EVENT:
            try:
                event = parse_event(record.body)
            except EventError as exc:
                reason = str(exc)
        if event is not None:
            dated = event.occurred_at or event.created_at
            if dated is None or dated >= self.horizon:
                return event
            reason = f"event dated {dated.isoformat()}, before the archive's hot window"
        self._reject(record, reason, event)
        return None

    def _load(self, parsed: list[tuple[SpoolRecord, JobEvent]]) -> dict[str, _Job]:
        ids = pl.DataFrame({"job_id": sorted({e.job_id for _, e in parsed})}, schema={"job_id": pl.String})
        jobs: dict[str, _Job] = {}
        if ids.height == 0:
            return jobs
        for row in self.w.archived_jobs(self.tenant, ids).iter_rows(named=True):
            jobs[row["job_id"]] = _Job(
                status=row["status"],
                updated_at=row["updated_at"],
                row={c: row[c] for c in _STATE_COLUMNS if c in row} | {"last_sync_id": self.sync_id},
                row_id=row["row_id"],
            )
        changes = self.w.archived_changes(self.tenant, ids, self.sync_id)
        self._changes = changes
        for row in changes.filter(pl.col("changed_at").is_null()).iter_rows(named=True):
            job = jobs.get(row["job_id"])
            if job is not None:
                job.inexact_changes[row["to_status"]] = row["row_id"]
        return jobs

    def _next_steps(self, parsed: list[tuple[SpoolRecord, JobEvent]]) -> dict[str, int]:
        """Next free `step` per job for rows recorded under this sync (the poll merge may have some)."""
        if not parsed:
            return {}
        mine = self._changes.filter(pl.col("this_sync")).group_by("job_id").agg(pl.col("step").max())
        return {row["job_id"]: int(row["step"]) + 1 for row in mine.iter_rows(named=True)}

    # -- deciding ---------------------------------------------------------------------------------

    def _apply(
        self, jobs: dict[str, _Job], job_id: str, record: SpoolRecord, event: JobEvent, steps: dict[str, int]
    ) -> str:
        when = _when(record, event)
        job = jobs.get(job_id)
        if job is None:
            jobs[job_id] = self._create(record, event, when, steps)
            return OUTCOME_CREATED
        newer = (when, rank(event.status)) > (job.updated_at, rank(job.status))
        if event.status == job.status:
            refined = self._date(job, event)
            if job.row.get("status_inferred") and event.occurred_at is not None:
                job.row["status_inferred"] = False  # a KILLED seen, no longer inferred
                job.changed = True
            if newer:
                self._advance(job, record, event, when, steps, job_id)
                return OUTCOME_APPLIED
            return OUTCOME_REFINED if refined else OUTCOME_STALE
        if not newer:
            return OUTCOME_REFINED if self._date(job, event) else OUTCOME_STALE
        self._record_steps(job_id, job.status, job.updated_at, event, when, steps)
        self._advance(job, record, event, when, steps, job_id)
        return OUTCOME_APPLIED

    def _date(self, job: _Job, event: JobEvent) -> bool:
        row_id = job.inexact_changes.pop(event.status, None)
        if row_id is None or event.occurred_at is None:
            return False
        self.datings.append({"row_id": row_id, "changed_at": event.occurred_at})
        return True

    def _create(self, record: SpoolRecord, event: JobEvent, when: datetime, steps: dict[str, int]) -> _Job:
        created = event.created_at or when
        row = {
            "tenant": self.tenant,
            "job_id": event.job_id,
            "user_id": event.user_id,
            "target_id": event.target_id,
            "job_type": event.job_type or _UNKNOWN_TYPE,
            "created_at": created,
            "first_seen_at": when,
            "last_seen_at": when,
            "vanished_at": None,
        }
        job = _Job(status=event.status, updated_at=when, row=row, row_id=None)
        self._record_steps(event.job_id, None, created, event, when, steps)
        self._advance(job, record, event, when, steps, event.job_id)
        return job

    def _advance(
        self,
        job: _Job,
        record: SpoolRecord,
        event: JobEvent,
        when: datetime,
        steps: dict[str, int],
        job_id: str,
    ) -> None:
        metadata = _metadata_text(event.metadata)
        job.status, job.updated_at, job.changed = event.status, when, True
        job.row.update(
            status=event.status,
            status_inferred=False,
            progress=event.progress if event.progress is not None else job.row.get("progress"),
            error=event.error,
            metadata=metadata if metadata is not None else job.row.get("metadata"),
            started_at=event.started_at or job.row.get("started_at"),
            completed_at=event.completed_at or job.row.get("completed_at"),
            updated_at=when,
            last_sync_id=self.sync_id,
        )
        self.snapshot_rows.append(
            {
                "tenant": self.tenant,
                "sync_id": self.sync_id,
                "job_id": job_id,
                "observed_at": when,
                "status": event.status,
                "progress": event.progress,
                "updated_at": when,
                "error": event.error,
                "metadata": metadata,
                "payload": orjson.dumps(event.raw, option=orjson.OPT_SORT_KEYS).decode(),
                "source": SOURCE_WEBHOOK,
            }
        )

    def _record_steps(
        self,
        job_id: str,
        from_status: str | None,
        since: datetime,
        event: JobEvent,
        when: datetime,
        steps: dict[str, int],
    ) -> None:
        moves = lifecycle_steps(from_status, event.status, has_started=event.started_at is not None)
        exact_by_field = {
            CREATED_AT: event.created_at,
            STARTED_AT: event.started_at,
            COMPLETED_AT: event.completed_at,
        }
        after = since
        for index, move in enumerate(moves):
            last = index == len(moves) - 1
            exact = event.occurred_at if last else exact_by_field.get(move.timestamp_field or "")
            if last and move.timestamp_field in (CREATED_AT, STARTED_AT, COMPLETED_AT):
                exact = exact_by_field[move.timestamp_field] or exact
            step = steps.get(job_id, 1)
            steps[job_id] = step + 1
            self.change_rows.append(
                {
                    "tenant": self.tenant,
                    "job_id": job_id,
                    "from_status": move.from_status,
                    "to_status": move.to_status,
                    "changed_at": exact,
                    "changed_after": exact or after,
                    "changed_before": exact or when,
                    "source": SOURCE_WEBHOOK,
                    "sync_id": self.sync_id,
                    "step": step,
                }
            )
            if exact is not None:
                after = exact

    # -- recording --------------------------------------------------------------------------------

    def _remember(self, record: SpoolRecord, event: JobEvent | None, outcome: str) -> None:
        self.counts[outcome] += 1
        self.events_rows.append(
            {
                "tenant": self.tenant,
                "event_key": record.key,
                "sync_id": self.sync_id,
                "observed_at": self.observed_at,
                "received_at": record.received_at,
                "job_id": event.job_id if event else None,
                "status": event.status if event else None,
                "occurred_at": event.occurred_at if event else None,
                "outcome": outcome,
                "payload": record.body,
            }
        )

    def _reject(self, record: SpoolRecord, reason: str, event: JobEvent | None) -> None:
        job_id = event.job_id if event else _job_id_of(record.body)
        self.reject_rows.append(
            {
                "tenant": self.tenant,
                "sync_id": self.sync_id,
                "observed_at": self.observed_at,
                "job_id": job_id,
                "reason": f"webhook event: {reason}",
                "payload": record.body,
            }
        )
        self._remember(record, event, OUTCOME_REJECTED)

    def _write(self, jobs: dict[str, _Job]) -> None:
        w, t = self.w, self.w.t
        new = [job.row for job in jobs.values() if job.row_id is None]
        w.insert(t.jobs, _frame(new, JOB_COLUMNS), JOB_COLUMNS)
        updates = [
            job.row | {"row_id": job.row_id}
            for job in jobs.values()
            if job.row_id is not None and job.changed
        ]
        w.update_jobs(_frame(updates, ("row_id", *_STATE_COLUMNS)), _STATE_COLUMNS)
        w.insert(t.snapshots, _frame(self.snapshot_rows, SNAPSHOT_COLUMNS), SNAPSHOT_COLUMNS)
        w.insert(t.changes, _frame(self.change_rows, STATUS_CHANGE_COLUMNS), STATUS_CHANGE_COLUMNS)
        w.date_changes(_frame(self.datings, ("row_id", "changed_at")), SOURCE_WEBHOOK)
        w.insert(t.rejects, _frame(self.reject_rows, REJECT_COLUMNS), REJECT_COLUMNS)
        w.count_rejects(self.tenant, self.sync_id, len(self.reject_rows))
        w.insert(t.events, _frame(self.events_rows, WEBHOOK_EVENT_COLUMNS), WEBHOOK_EVENT_COLUMNS)


_TYPES: dict[str, pl.DataType] = {
    "row_id": pl.Int64(),
    "progress": pl.Int32(),
    "step": pl.Int16(),
    "status_inferred": pl.Boolean(),
}
_TIMES = {
    "observed_at",
    "updated_at",
    "created_at",
    "started_at",
    "completed_at",
    "first_seen_at",
    "last_seen_at",
    "vanished_at",
    "changed_at",
    "changed_after",
    "changed_before",
    "received_at",
    "occurred_at",
}


def _frame(rows: list[dict[str, Any]], columns: tuple[str, ...] | list[str]) -> pl.DataFrame:
    schema = {c: UTC_MICROS if c in _TIMES else _TYPES.get(c, pl.String()) for c in columns}
    return pl.DataFrame([{c: row.get(c) for c in columns} for row in rows], schema=schema)


def _when(record: SpoolRecord, event: JobEvent) -> datetime:
    return event.occurred_at or record.received_at


def _metadata_text(metadata: dict[str, Any] | None) -> str | None:
    if metadata is None:
        return None
    return orjson.dumps(metadata, option=orjson.OPT_SORT_KEYS).decode()


def _job_id_of(body: str) -> str | None:
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    value = raw.get("jobId") if isinstance(raw, dict) else None
    return value if isinstance(value, str) else None
