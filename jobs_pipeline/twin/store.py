"""Where jobs live: the live store the API serves from, and the ground-truth ledger.

Every list here is kept sorted by (createdAt, id), so the API's 24 h window is one bisect,
its newest-first order a reversed slice, and dropping old jobs a prefix deletion. Jobs older than `forget_after` leave it (memory
stays bounded on a twin that runs for days) but stay in the truth ledger, compacted, until
`truth_retention` (if any) drops them too.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from operator import attrgetter

from jobs_pipeline.twin.job import ERROR, IN_PROGRESS, PENDING, SimJob
from jobs_pipeline.twin.timefmt import MS_PER_DAY

# Statuses rare enough that listing them from their own index beats scanning the window:
# a client asking for `type=ERROR&offset=1000` must not cost a walk over 45k jobs.
INDEXED_STATUSES = (PENDING, IN_PROGRESS, ERROR)

_created = attrgetter("created_ms")
_sort_key = attrgetter("sort_key")


class JobStore:
    def __init__(self) -> None:
        self.live: list[SimJob] = []
        self.by_id: dict[str, SimJob] = {}
        self.by_target: dict[str, list[SimJob]] = {}
        self.truth: list[SimJob] = []
        self.truth_by_id: dict[str, SimJob] = {}
        self.forgotten_before_ms: int | None = None
        # Index in `live` below which jobs are already compacted (moves with forget_before).
        self._compacted_upto = 0
        # Live jobs currently in each indexed status (dicts as insertion-ordered sets).
        self.by_status: dict[str, dict[SimJob, None]] = {status: {} for status in INDEXED_STATUSES}

    def add(self, job: SimJob) -> None:
        _insert_sorted(self.truth, job)
        self.truth_by_id[job.id] = job
        if self.forgotten_before_ms is not None and job.created_ms < self.forgotten_before_ms:
            job.compact()  # a scripted job created further back than the live store reaches
            return
        position = _insert_sorted(self.live, job)
        if position < self._compacted_upto:
            job.compact()  # already out of the API's window
            self._compacted_upto += 1
        self.by_id[job.id] = job
        _insert_sorted(self.by_target.setdefault(job.target_id, []), job)
        self.status_changed(job, None)

    def status_changed(self, job: SimJob, old_status: str | None) -> None:
        """Keep the status indexes in step with a transition of a live job."""
        if self.by_id.get(job.id) is not job:
            return  # forgotten (older than the live store) or never live
        if old_status in self.by_status:
            self.by_status[old_status].pop(job, None)
        if job.status in self.by_status:
            self.by_status[job.status][job] = None

    def window(self, now_ms: int) -> tuple[int, int]:
        """Indexes [lo, hi) of the jobs with now - 24 h < createdAt <= now."""
        lo = bisect_right(self.live, now_ms - MS_PER_DAY, key=_created)
        hi = bisect_right(self.live, now_ms, key=_created)
        return lo, hi

    def compact_before(self, cutoff_ms: int) -> None:
        """Drop the API-view state (rendered rows, metadata, progress) of jobs created before
        `cutoff_ms`: once older than the 24 h window they can never be shown again."""
        end = bisect_left(self.live, cutoff_ms, key=_created)
        for index in range(self._compacted_upto, end):
            self.live[index].compact()
        self._compacted_upto = max(self._compacted_upto, end)

    def forget_before(self, cutoff_ms: int) -> int:
        """Drop jobs created before `cutoff_ms` from the live store; returns how many."""
        self.forgotten_before_ms = max(cutoff_ms, self.forgotten_before_ms or cutoff_ms)
        count = bisect_left(self.live, cutoff_ms, key=_created)
        if count == 0:
            return 0
        touched: set[str] = set()
        for job in self.live[:count]:
            self.by_id.pop(job.id, None)
            touched.add(job.target_id)
            for members in self.by_status.values():
                members.pop(job, None)
            job.compact()
        del self.live[:count]
        self._compacted_upto = max(0, self._compacted_upto - count)
        for target in touched:
            jobs = self.by_target[target]
            del jobs[: bisect_left(jobs, cutoff_ms, key=_created)]
            if not jobs:
                del self.by_target[target]
        return count

    def drop_truth_before(self, cutoff_ms: int) -> int:
        count = bisect_left(self.truth, cutoff_ms, key=_created)
        for job in self.truth[:count]:
            del self.truth_by_id[job.id]
        del self.truth[:count]
        return count


def _insert_sorted(jobs: list[SimJob], job: SimJob) -> int:
    """Insert by (createdAt, id); returns the position. Arrivals come in time order, so this
    is nearly always an append."""
    if not jobs or jobs[-1].sort_key <= job.sort_key:
        jobs.append(job)
        return len(jobs) - 1
    position = bisect_right(jobs, job.sort_key, key=_sort_key)
    jobs.insert(position, job)
    return position
