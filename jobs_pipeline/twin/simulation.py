"""The discrete-event simulation behind the twin: arrivals, a FIFO worker pool, kills.

Events are processed strictly in (time, priority, tie-break) order up to the twin clock, never
beyond: the future is only drawn (durations, outcomes) never lived, so a kill "now" can still
change it. Keys are unique and derived from job sequence numbers and arrival indexes, never
from when `advance_to` happened to be called, so stepping the clock by a second or by a day
gives the same history.

Pooled jobs wait in one FIFO queue (createdAt order) for a bounded pool of workers; scripted
jobs (`add_job`) follow the timeline their caller gave and bypass the pool.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable
from typing import Any

from jobs_pipeline.twin.arrivals import ArrivalQueue, DailyCycle, burst_arrivals, poisson_arrivals
from jobs_pipeline.twin.catalog import follow_ups_per_root, mean_service_seconds
from jobs_pipeline.twin.config import TwinConfig
from jobs_pipeline.twin.job import ACTIVE, DONE, IN_PROGRESS, PENDING, SimJob
from jobs_pipeline.twin.store import JobStore
from jobs_pipeline.twin.timefmt import MS_PER_DAY, MS_PER_HOUR
from jobs_pipeline.twin.workload import Workload

# Event priorities inside one millisecond: free workers first, then kills, then starts, then
# new arrivals (spontaneous arrivals use 9, see arrivals.py).
_FINISH, _CANCEL, _START, _ARRIVE = 0, 1, 2, 3
_PRUNE_EVERY_MS = MS_PER_HOUR

EventKey = tuple[int, int, int, int]


def pool_size(config: TwinConfig) -> int:
    """Workers for ~target_utilisation at the average load (unless given explicitly)."""
    if config.workers is not None:
        return config.workers
    busy = config.jobs_per_day / 86_400 * mean_service_seconds()
    return max(1, math.ceil(busy / config.target_utilisation))


class Simulation:
    def __init__(self, config: TwinConfig, start_ms: int) -> None:
        self.config = config
        self.workload = Workload(config.seed)
        self.store = JobStore()
        self.workers = pool_size(config)
        self.busy = 0
        self.queue: deque[SimJob] = deque()
        self.horizon_ms = start_ms - round(config.history_hours * MS_PER_HOUR)
        # Bumped on every change; caches of the API view are keyed by (now, version).
        self.version = 0
        self._events: list[tuple[int, int, int, int, SimJob]] = []
        self._forget_ms = round(config.forget_after.total_seconds() * 1000)
        self._truth_ms = (
            round(config.truth_retention.total_seconds() * 1000) if config.truth_retention else None
        )
        self._next_prune_ms = self.horizon_ms + _PRUNE_EVERY_MS
        streams = []
        if config.jobs_per_day > 0:
            # The Poisson stream carries root jobs only; follow-up embeddings make up the rest.
            root_per_day = config.jobs_per_day / (1 + follow_ups_per_root())
            cycle = DailyCycle(root_per_day, config.daily_amplitude, config.peak_hour_utc)
            streams.append(poisson_arrivals(cycle, self.horizon_ms, config.seed))
        for number, burst in enumerate(config.bursts, start=1):
            streams.append(burst_arrivals(burst, number, config.seed))
        self._arrivals = ArrivalQueue(streams, self.horizon_ms)
        # Told of every transition as it is lived (the webhook sender); None: nobody listens.
        self.on_transition: Callable[[SimJob, int], None] | None = None

    def _tell(self, job: SimJob, at_ms: int) -> None:
        if self.on_transition is not None:
            self.on_transition(job, at_ms)

    # -- the event loop --------------------------------------------------------------------------

    def _push(self, at_ms: int, priority: int, job: SimJob) -> None:
        heapq.heappush(self._events, (at_ms, priority, 0, job.seq, job))

    def advance_to(self, now_ms: int) -> None:
        """Live every event up to and including `now_ms` (never goes back)."""
        if now_ms < self.horizon_ms:
            return
        events = self._events
        arrivals = self._arrivals
        while True:
            arrival_key = arrivals.peek_key()
            event_key: EventKey | None = events[0][:4] if events else None
            if arrival_key is not None and (event_key is None or arrival_key < event_key):
                if arrival_key[0] > now_ms:
                    break
                self._maybe_prune(arrival_key[0])
                arrival = arrivals.pop()
                self._arrive(self.workload.root_job(arrival), arrival.at_ms)
            elif event_key is not None:
                if event_key[0] > now_ms:
                    break
                self._maybe_prune(event_key[0])
                at_ms, priority, _, _, job = heapq.heappop(events)
                self._dispatch_event(at_ms, priority, job)
            else:
                break
            self.version += 1
        self.horizon_ms = now_ms
        self._maybe_prune(now_ms)

    def _dispatch_event(self, at_ms: int, priority: int, job: SimJob) -> None:
        if priority == _FINISH:
            self._finish(job, at_ms)
        elif priority == _CANCEL:
            self._cancel(job, at_ms)
        elif priority == _START:
            if job.status == PENDING:
                self._start(job, at_ms)
        else:
            self._arrive(job, at_ms)

    def _arrive(self, job: SimJob, at_ms: int) -> None:
        job.arrive()
        self.store.add(job)  # indexes the job under its (PENDING) status
        self._tell(job, at_ms)
        if job.cancel_at_ms is not None:
            self._push(max(job.cancel_at_ms, at_ms), _CANCEL, job)
        if job.pooled:
            self.queue.append(job)
            self._fill_workers(at_ms)
        else:
            self._push(at_ms + (job.queue_ms or 0), _START, job)

    def _start(self, job: SimJob, at_ms: int) -> None:
        job.start(at_ms)
        self.store.status_changed(job, PENDING)
        self._tell(job, at_ms)
        self._push(at_ms + job.run_ms, _FINISH, job)
        if job.kill_fraction is not None:
            self._push(at_ms + int(job.run_ms * job.kill_fraction), _CANCEL, job)

    def _fill_workers(self, at_ms: int) -> None:
        while self.busy < self.workers and self.queue:
            job = self.queue.popleft()
            if job.status != PENDING:
                continue  # killed while it waited
            self.busy += 1
            self._start(job, at_ms)

    def _finish(self, job: SimJob, at_ms: int) -> None:
        if job.status != IN_PROGRESS or job.finish_ms != at_ms:
            return  # killed before it could finish
        job.finish(at_ms)
        self.store.status_changed(job, IN_PROGRESS)
        self._tell(job, at_ms)
        if job.pooled:
            self.busy -= 1
            if job.follow_up and job.status == DONE:
                follow = self.workload.follow_up(job, at_ms)
                self._push(follow.created_ms, _ARRIVE, follow)
            self._fill_workers(at_ms)

    def _cancel(self, job: SimJob, at_ms: int) -> None:
        if job.status not in ACTIVE:
            return  # already over: the cancel came too late
        was_running = job.status == IN_PROGRESS
        old_status = job.status
        job.kill(at_ms)
        self.store.status_changed(job, old_status)
        self._tell(job, at_ms)
        if job.pooled and was_running:
            self.busy -= 1
            self._fill_workers(at_ms)

    def _maybe_prune(self, at_ms: int) -> None:
        if at_ms < self._next_prune_ms:
            return
        self._next_prune_ms = at_ms + _PRUNE_EVERY_MS
        self.store.compact_before(at_ms - MS_PER_DAY)
        pruned = self.store.forget_before(at_ms - self._forget_ms)
        if self._truth_ms is not None:
            pruned += self.store.drop_truth_before(at_ms - self._truth_ms)
        if pruned:
            self.version += 1  # indexes into the live store moved

    # -- outside interventions (always at the horizon) ----------------------------------------

    def add_scripted(self, job: SimJob) -> None:
        """Schedule a scripted job; if its createdAt is in the past, its past is lived now."""
        self._push(job.created_ms, _ARRIVE, job)
        self.advance_to(self.horizon_ms)
        self.version += 1

    def kill(self, job: SimJob) -> bool:
        if job.status not in ACTIVE:
            return False
        self._cancel(job, self.horizon_ms)
        self.version += 1
        return True

    def stats(self) -> dict[str, Any]:
        return {
            "workers": self.workers,
            "busy": self.busy,
            "queued": sum(1 for job in self.queue if job.status == PENDING),
            "live_jobs": len(self.store.live),
            "truth_jobs": len(self.store.truth),
        }
