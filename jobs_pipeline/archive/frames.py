"""A CaptureResult as Arrow tables: the one place Python objects are walked, column by column.

Everything after this runs on columns (Polars, DuckDB). The work here is per observation and
unavoidable (attributes, JSON text), so it is kept to one pass per column and done only once per
job: several observations of a job in one result are reduced to the latest FIRST.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa

from jobs_pipeline.archive.errors import ArchiveError
from jobs_pipeline.archive.jsoncolumn import json_column
from jobs_pipeline.archive.jsontext import payload_value, reject_payload_text
from jobs_pipeline.archive.lifecycle import rank
from jobs_pipeline.capture.types import CaptureResult, Gap, Observation, Vanished

TIMESTAMP = pa.timestamp("us", tz="UTC")

OBSERVATION_SCHEMA = pa.schema(
    [
        ("job_id", pa.string()),
        ("user_id", pa.string()),
        ("target_id", pa.string()),
        ("job_type", pa.string()),
        ("status", pa.string()),
        ("progress", pa.int32()),
        ("error", pa.string()),
        ("metadata", pa.string()),
        ("payload", pa.string()),
        ("created_at", TIMESTAMP),
        ("started_at", TIMESTAMP),
        ("completed_at", TIMESTAMP),
        ("updated_at", TIMESTAMP),
        ("observed_at", TIMESTAMP),
    ]
)

VANISHED_SCHEMA = pa.schema(
    [
        ("job_id", pa.string()),
        ("kind", pa.string()),
        ("last_seen_at", TIMESTAMP),
        ("missing_at", TIMESTAMP),
    ]
)

REJECT_SCHEMA = pa.schema([("job_id", pa.string()), ("reason", pa.string()), ("payload", pa.string())])

VANISHED_KINDS = frozenset({"KILLED", "EXPIRED"})


@dataclass(frozen=True, slots=True)
class SyncHeader:
    """The per-sync facts of a CaptureResult (everything but its rows)."""

    tenant: str
    sync_id: str
    started_at: datetime
    finished_at: datetime
    observed_at: datetime
    requests: int
    pages: int
    rate_limited: int
    gaps: tuple[Gap, ...]
    # The planner's decisions (sync_runs.plan_notes).
    plan_notes: Mapping[str, Any] = field(default_factory=dict)

    @property
    def coverage_complete(self) -> bool:
        return not self.gaps


@dataclass(frozen=True, slots=True)
class CaptureFrames:
    header: SyncHeader
    observations: pa.Table  # OBSERVATION_SCHEMA, one row per job: its latest observation in the result
    vanished: pa.Table  # VANISHED_SCHEMA
    rejects: pa.Table  # REJECT_SCHEMA


def build_capture_frames(result: CaptureResult) -> CaptureFrames:
    if not result.tenant:
        raise ArchiveError("a CaptureResult must name its tenant")
    header = SyncHeader(
        tenant=result.tenant,
        sync_id=result.sync_id,
        started_at=result.started_at,
        finished_at=result.finished_at,
        observed_at=result.observed_at,
        requests=result.requests,
        pages=result.pages,
        rate_limited=result.rate_limited,
        gaps=tuple(result.gaps),
        plan_notes=dict(result.plan_notes),
    )
    return CaptureFrames(
        header=header,
        observations=observations_table(result.observations),
        vanished=vanished_table(result.vanished),
        rejects=rejects_table(result),
    )


def latest_per_job(observations: Sequence[Observation]) -> list[Observation]:
    """One observation per job: the latest by (updatedAt, lifecycle rank, observed_at); ties keep the later one."""
    if len({obs.job.id for obs in observations}) == len(observations):
        return list(observations)  # the common case: nothing to choose
    best: dict[str, tuple[tuple[datetime, int, datetime], Observation]] = {}
    for obs in observations:
        key = (obs.job.updated_at, rank(obs.job.status), obs.observed_at)
        current = best.get(obs.job.id)
        if current is None or key >= current[0]:
            best[obs.job.id] = (key, obs)
    return [obs for _, obs in best.values()]


def observations_table(observations: Sequence[Observation]) -> pa.Table:
    latest = latest_per_job(observations)
    jobs = [obs.job for obs in latest]
    columns = {
        "job_id": [job.id for job in jobs],
        "user_id": [job.user_id for job in jobs],
        "target_id": [job.target_id for job in jobs],
        "job_type": [job.type for job in jobs],
        "status": [job.status for job in jobs],
        "progress": [job.progress for job in jobs],
        "error": [job.error for job in jobs],
        # Keys sorted in metadata, as canonical_json; the payload as payload_json (jsontext.py).
        "metadata": json_column([job.metadata for job in jobs], sort_keys=True),
        "payload": json_column([payload_value(job) for job in jobs]),
        "created_at": [job.created_at for job in jobs],
        "started_at": [job.started_at for job in jobs],
        "completed_at": [job.completed_at for job in jobs],
        "updated_at": [job.updated_at for job in jobs],
        "observed_at": _repeated_timestamps([obs.observed_at for obs in latest]),
    }
    return pa.table(
        [
            col
            if isinstance(col, pa.Array | pa.ChunkedArray)
            else pa.array(col, type=OBSERVATION_SCHEMA.field(name).type)
            for name, col in columns.items()
        ],
        schema=OBSERVATION_SCHEMA,
    )


def vanished_table(vanished: Sequence[Vanished]) -> pa.Table:
    unknown = {v.kind for v in vanished} - VANISHED_KINDS
    if unknown:
        raise ArchiveError(f"unknown Vanished kind(s) {sorted(unknown)}; expected KILLED or EXPIRED")
    return pa.table(
        {
            "job_id": pa.array([v.job_id for v in vanished], pa.string()),
            "kind": pa.array([v.kind for v in vanished], pa.string()),
            "last_seen_at": pa.array([v.last_seen_at for v in vanished], TIMESTAMP),
            "missing_at": pa.array([v.missing_at for v in vanished], TIMESTAMP),
        },
        schema=VANISHED_SCHEMA,
    )


def rejects_table(result: CaptureResult) -> pa.Table:
    return pa.table(
        {
            "job_id": pa.array([r.job_id for r in result.rejects], pa.string()),
            "reason": pa.array([r.reason for r in result.rejects], pa.string()),
            "payload": pa.array([reject_payload_text(r.raw) for r in result.rejects], pa.string()),
        },
        schema=REJECT_SCHEMA,
    )


def _repeated_timestamps(values: list[datetime]) -> pa.Array:
    # A sync has a handful of distinct observation instants (one per response): convert each once.
    index: dict[datetime, int] = {}
    positions = [index.setdefault(value, len(index)) for value in values]
    distinct = pa.array(list(index), TIMESTAMP)
    return distinct.take(pa.array(positions, pa.int32()))
