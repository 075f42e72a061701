"""The Jobs API's data as typed, tolerant Python values.

Tolerant on purpose: the vendor may add job types, statuses and fields at any time, so `type`
and `status` are plain strings (the known values are listed in the enums for reference), and
every job keeps its raw JSON payload, unknown fields included.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class JobStatus(StrEnum):
    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    DONE = "DONE"
    ERROR = "ERROR"
    # Never returned by the API; the archive infers it when an active job vanishes inside 24 h.
    KILLED = "KILLED"


ACTIVE_STATUSES: frozenset[str] = frozenset({JobStatus.PENDING, JobStatus.IN_PROGRESS})
TERMINAL_STATUSES: frozenset[str] = frozenset({JobStatus.DONE, JobStatus.ERROR, JobStatus.KILLED})
# The only values the API accepts in its (misnamed) `type` query parameter.
QUERYABLE_STATUSES: tuple[str, ...] = (
    JobStatus.PENDING,
    JobStatus.IN_PROGRESS,
    JobStatus.DONE,
    JobStatus.ERROR,
)


class JobType(StrEnum):
    EXTRACTION = "EXTRACTION"
    EMBEDDING = "EMBEDDING"
    SYNC = "SYNC"
    IMPORT = "IMPORT"
    TRANSCRIPTION = "TRANSCRIPTION"
    GENERATION = "GENERATION"


# API hard limits (vendor doc): never send more than these.
MAX_LIMIT = 100
MAX_OFFSET = 1000
DEFAULT_RATE_LIMIT_PER_MINUTE = 100
RETENTION_HOURS = 24


@dataclass(frozen=True, slots=True)
class Job:
    """One job as the API returned it. Timestamps are timezone-aware UTC, millisecond exact."""

    id: str
    user_id: str | None
    target_id: str | None
    type: str
    status: str
    created_at: datetime
    updated_at: datetime
    progress: int | None = None
    metadata: dict[str, Any] | None = None
    error: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    # The job exactly as received (unknown fields included), for the archive's `payload` column.
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class RejectedRecord:
    """A record in a page that could not be parsed into a Job: kept with its reason, never dropped."""

    raw: Any
    reason: str
    job_id: str | None = None


@dataclass(frozen=True, slots=True)
class Page:
    """One response of GET /v1/jobs.

    `observed_at` is the server's `Date` header (the 24 h window is the server's), or the local
    clock when the header is absent (`clock_source` says which).
    `is_last` is True when the server returned fewer rows than asked: the slice ends here.
    """

    jobs: tuple[Job, ...]
    rejects: tuple[RejectedRecord, ...]
    observed_at: datetime
    clock_source: str  # "server" | "local"
    status: str | None
    target_id: str | None
    offset: int
    limit: int
    row_count: int  # rows in the response's data array, parsed or not

    @property
    def is_last(self) -> bool:
        return self.row_count < self.limit
