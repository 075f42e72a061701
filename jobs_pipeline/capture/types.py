"""Plain data exchanged between the archive (what we already know) and the planner (what to fetch).

The capture layer imports only `api`; the archive turns its tables into a `CaptureState` and
applies a `CaptureResult` in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jobs_pipeline.api.models import Job, RejectedRecord


@dataclass(frozen=True, slots=True)
class KnownJob:
    """What the archive knows of a job that may still be in the API's 24 h window."""

    job_id: str
    target_id: str | None
    job_type: str
    status: str
    created_at: datetime
    updated_at: datetime
    last_seen_at: datetime  # server clock of the last sync that saw it


@dataclass(frozen=True, slots=True)
class CaptureState:
    """The archive's knowledge of one tenant, as input to the planner."""

    tenant: str
    # Server clock of the last successful sync; None on an empty archive (first sync = backfill).
    last_observed_at: datetime | None
    # Whether the last successful sync saw everything it needed (no cap gaps).
    last_coverage_complete: bool
    # Jobs not yet known to be gone, created within the retention window (+ margin) of the last sync.
    known: dict[str, KnownJob] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Observation:
    """A job as seen in one response, stamped with that response's server clock."""

    job: Job
    observed_at: datetime


@dataclass(frozen=True, slots=True)
class Vanished:
    """A job the archive knew that no longer appears where it must.

    kind "KILLED": absent while younger than 24 h by the server clock (inferred, the API hides KILLED);
    kind "EXPIRED": aged out of the 24 h window, the last known status stays.
    """

    job_id: str
    kind: str  # "KILLED" | "EXPIRED"
    last_seen_at: datetime
    missing_at: datetime  # server clock when absence was established


@dataclass(frozen=True, slots=True)
class Gap:
    """A part of a slice the sync could not see: never silent (recorded in sync_runs.gaps)."""

    # "ALL", "PENDING", "IN_PROGRESS", "DONE", "ERROR", "target:<id>[/<status>]" (a list walked),
    # "*" (the whole sync) or "known-active" (jobs the archive knew as queued or running).
    slice: str
    # Why it was not seen. A new reason needs a line here, in the README, and in the COMMENT on
    # sync_runs.gaps (a new archive/ddl.py step): test_archive_schema.py checks the last two.
    #   "cap"        the slice reached the API's offset cap before this createdAt range
    #   "budget"     the request budget ran out (slice "*", open bounds: anything may be missing)
    #   "drift"      rows moved between two pages of a walk and it could not re-join them
    #   "rejected"   a page kept unreadable records: the jobs behind them were not seen
    #   "behind-cap" queued jobs hidden past the PENDING cap, behind the queue front: not probed
    #   "unresolved" known queued or running jobs the sync could neither find nor prove gone
    #   "revisit"    planner-internal only: the range of earlier gaps a sync looks at again;
    #                never recorded
    reason: str
    created_from: datetime | None  # createdAt range not seen (inclusive bounds, None = open)
    created_to: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {
            "slice": self.slice,
            "reason": self.reason,
            "created_from": self.created_from.isoformat() if self.created_from else None,
            "created_to": self.created_to.isoformat() if self.created_to else None,
        }


@dataclass(slots=True)
class CaptureResult:
    """Everything one sync learnt, ready for the archive to apply atomically."""

    tenant: str
    sync_id: str
    started_at: datetime  # local clock
    finished_at: datetime  # local clock
    observed_at: datetime  # server clock (Date header) at the start of the sync
    requests: int
    pages: int
    observations: list[Observation]
    vanished: list[Vanished]
    gaps: list[Gap]
    rejects: list[RejectedRecord]
    rate_limited: int = 0  # 429 responses received
    plan_notes: dict[str, Any] = field(default_factory=dict)

    @property
    def coverage_complete(self) -> bool:
        return not self.gaps
