"""An in-memory model of the Jobs API's list semantics, for fast planner unit and property tests.

It is deliberately tiny (no HTTP, no workload model): the real twin is used by the end-to-end
tests. It shares no code with the twin or the planner, so it is an independent reference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from jobs_pipeline.api.models import MAX_LIMIT, MAX_OFFSET, Job, Page


@dataclass
class FakeJob:
    id: str
    target_id: str
    created: datetime
    start: datetime | None = None
    end: datetime | None = None
    outcome: str = "DONE"
    kill_at: datetime | None = None
    job_type: str = "EXTRACTION"

    def status_at(self, t: datetime) -> str | None:
        if self.created > t:
            return None
        # KILLED cancels a queued or running job; a job that already finished stays finished.
        if self.kill_at is not None and t >= self.kill_at and (self.end is None or self.kill_at < self.end):
            return "KILLED"
        if self.end is not None and t >= self.end:
            return self.outcome
        if self.start is not None and t >= self.start:
            return "IN_PROGRESS"
        return "PENDING"

    def as_job(self, t: datetime) -> Job:
        status = self.status_at(t)
        assert status is not None
        started = self.start if self.start is not None and t >= self.start else None
        completed = self.end if status in ("DONE", "ERROR") else None
        updated = max(x for x in (self.created, started, completed) if x is not None)
        return Job(
            id=self.id,
            user_id="u1",
            target_id=self.target_id,
            type=self.job_type,
            status=status,
            created_at=self.created,
            updated_at=updated,
            started_at=started,
            completed_at=completed,
            raw={"id": self.id},
        )


class FakeApi:
    def __init__(self, jobs: list[FakeJob], now: datetime):
        self.jobs = {j.id: j for j in jobs}
        self.now = now
        self.requests: list[tuple[str | None, str | None, int]] = []
        self.before_request: Callable[[int], None] | None = None
        self.responses_429 = 0

    def list_jobs(
        self, *, status: str | None = None, target_id: str | None = None, limit: int = 100, offset: int = 0
    ) -> Page:
        assert 0 < limit <= MAX_LIMIT and 0 <= offset <= MAX_OFFSET, (limit, offset)
        if self.before_request is not None:
            self.before_request(len(self.requests))
        self.requests.append((status, target_id, offset))
        t = self.now
        rows = [
            j
            for j in self.jobs.values()
            if j.created <= t
            and j.created > t - timedelta(hours=24)
            and j.status_at(t) != "KILLED"
            and (status is None or j.status_at(t) == status)
            and (target_id is None or j.target_id == target_id)
        ]
        rows.sort(key=lambda j: (j.created, j.id), reverse=True)
        chunk = rows[offset : offset + limit]
        return Page(
            jobs=tuple(j.as_job(t) for j in chunk),
            rejects=(),
            observed_at=t,
            clock_source="server",
            status=status,
            target_id=target_id,
            offset=offset,
            limit=limit,
            row_count=len(chunk),
        )
