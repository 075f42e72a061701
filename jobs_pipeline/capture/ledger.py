"""Every request of one sync goes through the ledger: it spends the budget, counts, and keeps
the latest observation of each job. One place, so budget and observation rules cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from jobs_pipeline.api.models import MAX_LIMIT, Job, Page, RejectedRecord
from jobs_pipeline.capture.types import Observation

# Lifecycle rank: when one job shows two statuses in one sync (it moved while we paged), the later
# stage wins even if updatedAt ties.
_RANK = {"PENDING": 0, "IN_PROGRESS": 1, "DONE": 2, "ERROR": 2}


class JobsSource(Protocol):
    """What the planner needs from the API client (JobsClient satisfies it)."""

    def list_jobs(
        self,
        *,
        status: str | None = None,
        target_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Page: ...


class BudgetExhausted(Exception):
    """Raised inside the planner when the sync's request budget is spent; turned into gaps."""


def _newer(a: Observation, b: Observation) -> bool:
    """Is observation `a` a later state of the job than `b`?"""
    ka = (a.job.updated_at, _RANK.get(a.job.status, 1), a.observed_at)
    kb = (b.job.updated_at, _RANK.get(b.job.status, 1), b.observed_at)
    return ka > kb


class RequestLedger:
    def __init__(self, source: JobsSource, budget: int, on_request: Callable[[Page], None] | None = None):
        if budget < 1:
            raise ValueError("the request budget must allow at least one request")
        self._source = source
        self.budget = budget
        self.requests = 0
        self.pages: list[Page] = []
        self.seen: dict[str, Observation] = {}
        self.rejects: list[RejectedRecord] = []
        self.first_observed_at: datetime | None = None
        self.last_observed_at: datetime | None = None
        self._on_request = on_request

    @property
    def remaining(self) -> int:
        return self.budget - self.requests

    def fetch(self, *, status: str | None = None, target_id: str | None = None, offset: int = 0) -> Page:
        if self.remaining <= 0:
            raise BudgetExhausted
        self.requests += 1
        page = self._source.list_jobs(status=status, target_id=target_id, limit=MAX_LIMIT, offset=offset)
        self.pages.append(page)
        if self.first_observed_at is None:
            self.first_observed_at = page.observed_at
        self.last_observed_at = page.observed_at
        for job in page.jobs:
            self._observe(job, page.observed_at)
        self.rejects.extend(page.rejects)
        if self._on_request is not None:
            self._on_request(page)
        return page

    def _observe(self, job: Job, observed_at: datetime) -> None:
        obs = Observation(job=job, observed_at=observed_at)
        current = self.seen.get(job.id)
        if current is None or _newer(obs, current):
            self.seen[job.id] = obs
