"""Parity with the vendor's `JobMonitor` example: wait for one job, and quick statistics.

Where the vendor's example is wrong or fragile, this version differs on purpose:
- It never sends a job TYPE as the API's `type` parameter (that parameter filters by STATUS); it
  asks for the target's jobs newest-first and filters the job type on our side.
- "No job yet" is not an immediate failure (the vendor returns None): a job is often created a
  moment after the action that causes it, so the monitor keeps polling until the timeout and then
  raises `JobNotFoundError` (a `TimeoutError`).
- Once a job is found, the monitor follows that job id (a newer job of the same type on the same
  target does not hijack the wait). If the job then disappears from a complete listing, it raises
  `JobVanishedError`: the API hides KILLED jobs, so vanishing inside 24 h means it was killed.
- Polls are at least 2 s apart (the vendor doc's rule) and back off by x1.5 up to 30 s while
  nothing changes; any change (status, progress, updatedAt) resets the interval.
- The deadline is checked between polls, so a wait can overrun `timeout` by at most one poll gap.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from jobs_pipeline.api.models import MAX_LIMIT, QUERYABLE_STATUSES, Job, JobStatus, Page
from jobs_pipeline.api.pagination import PageSource

MIN_POLL_INTERVAL = 2.0
MAX_POLL_INTERVAL = 30.0
POLL_BACKOFF = 1.5


class JobFailedError(Exception):
    """The awaited job ended in ERROR; `job` holds it (its `error` says why)."""

    def __init__(self, job: Job) -> None:
        self.job = job
        reason = job.error or "no error given"
        super().__init__(f"job {job.id} ({job.type}) on {job.target_id} failed: {reason}")


class JobVanishedError(Exception):
    """The awaited job was seen, then disappeared from the API (KILLED jobs are hidden)."""

    def __init__(self, job: Job) -> None:
        self.job = job
        super().__init__(
            f"job {job.id} ({job.type}) on {job.target_id} disappeared from the API while {job.status}: "
            "it was most likely KILLED (the API never returns KILLED jobs)"
        )


class WaitTimeoutError(TimeoutError):
    """The awaited job did not finish in time; `job` is its last seen state (None if never seen)."""

    def __init__(self, message: str, job: Job | None) -> None:
        self.job = job
        super().__init__(message)


class JobNotFoundError(WaitTimeoutError):
    """No matching job appeared for the target before the timeout."""


@dataclass(frozen=True, slots=True)
class JobStatistics:
    """Counts over one page of recent jobs, like the vendor's `get_job_statistics`."""

    total: int  # parsed jobs
    by_status: dict[str, int]  # every queryable status present (0 if none), plus any unknown ones
    by_type: dict[str, int]
    rejected: int  # records the parser could not read (not in `total`)
    observed_at: datetime

    @property
    def pending(self) -> int:
        return self.by_status.get(JobStatus.PENDING, 0)

    @property
    def in_progress(self) -> int:
        return self.by_status.get(JobStatus.IN_PROGRESS, 0)

    @property
    def done(self) -> int:
        return self.by_status.get(JobStatus.DONE, 0)

    @property
    def error(self) -> int:
        return self.by_status.get(JobStatus.ERROR, 0)


def wait_for_job(
    client: PageSource,
    target_id: str,
    job_type: str | None = None,
    timeout: float = 300.0,
    poll_interval: float = MIN_POLL_INTERVAL,
    on_update: Callable[[Job], None] | None = None,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Job:
    """Poll the target's jobs until the newest one (of `job_type`, if given) is DONE; return it.

    Raises JobFailedError on ERROR, JobVanishedError if it disappears, JobNotFoundError or
    WaitTimeoutError (both TimeoutError) at the deadline. `on_update(job)` is called on first
    sight and on every change. `sleep`/`clock` are injectable for tests.
    """
    if not target_id:
        raise ValueError("target_id is required: the monitor follows the jobs of one resource")
    if poll_interval < MIN_POLL_INTERVAL:
        raise ValueError(f"poll_interval must be at least {MIN_POLL_INTERVAL} s (the API doc's rule)")
    if timeout < 0:
        raise ValueError(f"timeout must not be negative, got {timeout}")
    deadline = clock() + timeout
    interval = poll_interval
    last: Job | None = None
    while True:
        page = client.list_jobs(target_id=target_id, limit=MAX_LIMIT)
        job = _find(page, job_type, last.id if last else None)
        if job is None and last is not None and _conclusively_absent(page, last.id):
            raise JobVanishedError(last)
        if job is not None and (last is None or _state(job) != _state(last)):
            interval = poll_interval
            if on_update is not None:
                on_update(job)
        else:
            interval = min(interval * POLL_BACKOFF, max(MAX_POLL_INTERVAL, poll_interval))
        if job is not None:
            last = job
            if job.status == JobStatus.DONE:
                return job
            if job.status == JobStatus.ERROR:
                raise JobFailedError(job)
        remaining = deadline - clock()
        if remaining <= 0:
            raise _timeout(target_id, job_type, timeout, last)
        sleep(max(MIN_POLL_INTERVAL, min(interval, remaining)))


def job_statistics(client: PageSource, limit: int = MAX_LIMIT) -> JobStatistics:
    """Counts by status and by type over the `limit` newest jobs (one request)."""
    page = client.list_jobs(limit=limit)
    by_status: dict[str, int] = dict.fromkeys(QUERYABLE_STATUSES, 0)
    by_status.update(Counter(job.status for job in page.jobs))
    by_type = dict(Counter(job.type for job in page.jobs))
    return JobStatistics(
        total=len(page.jobs),
        by_status=by_status,
        by_type=by_type,
        rejected=len(page.rejects),
        observed_at=page.observed_at,
    )


def _find(page: Page, job_type: str | None, tracked_id: str | None) -> Job | None:
    for job in page.jobs:  # newest first
        if tracked_id is not None:
            if job.id == tracked_id:
                return job
        elif job_type is None or job.type == job_type:
            return job
    return None


def _conclusively_absent(page: Page, job_id: str) -> bool:
    # A full page may have pushed the job further down, and a rejected record may be it: unknown.
    return page.is_last and all(reject.job_id != job_id for reject in page.rejects)


def _state(job: Job) -> tuple[str, int | None, datetime]:
    return job.status, job.progress, job.updated_at


def _timeout(target_id: str, job_type: str | None, timeout: float, last: Job | None) -> WaitTimeoutError:
    what = f"{job_type} job" if job_type else "job"
    if last is None:
        return JobNotFoundError(f"no {what} for target {target_id} appeared within {timeout:g} s", None)
    progress = f", {last.progress}%" if last.progress is not None else ""
    return WaitTimeoutError(
        f"{what} {last.id} for target {target_id} still {last.status}{progress} after {timeout:g} s", last
    )
