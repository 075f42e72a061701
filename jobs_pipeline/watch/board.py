"""The dashboard's state: what the last refresh saw, and the transitions between refreshes.

Pure (no HTTP, no terminal): `Board.update` takes the two pages one refresh fetches and returns
the transitions it revealed, so the logic is testable on hand-made pages.

A refresh fetches (see `refresh.py`):
- the newest `limit` jobs (one request): counts by status, like the vendor's dashboard, and the
  transitions of recent jobs;
- the IN_PROGRESS jobs, up to 100 (one request): every running job with its progress, however
  old (a 25-minute SYNC is far below the newest 50).

Transitions reported:
- a job seen before whose status changed (`from_status` -> `to_status`);
- a job created since the previous refresh (`from_status` None: new);
- a job that was IN_PROGRESS and is now in neither page while the IN_PROGRESS list was complete:
  it ended, but outside the newest `limit` jobs we cannot see how (`to_status` OUT_OF_VIEW).
Jobs that merely enter the view (an old job newly IN_PROGRESS) are tracked from then on.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

from jobs_pipeline.api.models import Job, JobStatus, Page
from jobs_pipeline.api.monitor import JobStatistics

OUT_OF_VIEW = "ENDED (out of view)"
DEFAULT_TRANSITIONS_KEPT = 15


@dataclass(frozen=True, slots=True)
class Transition:
    at: datetime  # the job's updatedAt (when the API says it changed); the refresh's clock if gone
    job_id: str
    job_type: str
    from_status: str | None  # None: a new job
    to_status: str


@dataclass
class Board:
    limit: int
    transitions_kept: int = DEFAULT_TRANSITIONS_KEPT
    refreshes: int = 0
    observed_at: datetime | None = None
    statistics: JobStatistics | None = None
    running: list[Job] = field(default_factory=list)  # IN_PROGRESS jobs, longest-running first
    running_complete: bool = True  # False when more than one page of jobs is IN_PROGRESS
    transitions: deque[Transition] = field(default_factory=deque)
    _known: dict[str, Job] = field(default_factory=dict)

    def update(self, statistics: JobStatistics, recent: Page, running: Page) -> list[Transition]:
        """Take one refresh's pages; returns the transitions it revealed (oldest first)."""
        previous_at = self.observed_at
        current = _latest_by_id([*recent.jobs, *running.jobs])
        found: list[Transition] = []
        if self.refreshes > 0:
            for job in current.values():
                before = self._known.get(job.id)
                if before is not None and before.status != job.status:
                    found.append(Transition(job.updated_at, job.id, job.type, before.status, job.status))
                elif before is None and previous_at is not None and job.created_at >= previous_at:
                    # Newer than the previous refresh (whose Date header is truncated to the second).
                    found.append(Transition(job.updated_at, job.id, job.type, None, job.status))
            if running.is_last:
                for job_id, before in self._known.items():
                    if before.status == JobStatus.IN_PROGRESS and job_id not in current:
                        found.append(
                            Transition(recent.observed_at, job_id, before.type, before.status, OUT_OF_VIEW)
                        )
            found.sort(key=lambda t: (t.at, t.job_id))
        self._known = current
        self.refreshes += 1
        self.observed_at = recent.observed_at
        self.statistics = statistics
        self.running = sorted(
            (job for job in running.jobs if job.status == JobStatus.IN_PROGRESS),
            key=lambda job: (job.started_at or job.created_at, job.id),
        )
        self.running_complete = running.is_last
        for transition in found:
            self.transitions.append(transition)
        while len(self.transitions) > self.transitions_kept:
            self.transitions.popleft()
        return found


def _latest_by_id(jobs: list[Job]) -> dict[str, Job]:
    # The same job can be in both pages (fetched a moment apart): keep its latest state.
    latest: dict[str, Job] = {}
    for job in jobs:
        seen = latest.get(job.id)
        if seen is None or job.updated_at >= seen.updated_at:
            latest[job.id] = job
    return latest
