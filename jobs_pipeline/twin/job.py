"""One simulated job: its planned behaviour, the timeline it actually lived, and its views.

The simulation fills the timeline (`started_ms`, `completed_ms`, `killed_ms`, `status`) as its
clock passes each transition, so a job never knows its future: `status` is always the status at
the simulation's horizon (= the twin clock), and `status_at(t)` answers for any past instant.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from typing import Any

from jobs_pipeline.twin.catalog import JobKind, draw_progress_fractions
from jobs_pipeline.twin.timefmt import iso_ms

PENDING = "PENDING"
IN_PROGRESS = "IN_PROGRESS"
DONE = "DONE"
ERROR = "ERROR"
KILLED = "KILLED"
ACTIVE = frozenset({PENDING, IN_PROGRESS})


class SimJob:
    __slots__ = (
        "cancel_at_ms",
        "completed_ms",
        "created_ms",
        "details",
        "done_metadata",
        "error",
        "finish_ms",
        "follow_up",
        "id",
        "job_type",
        "kill_fraction",
        "killed_ms",
        "metadata",
        "outcome",
        "planned_ms",
        "pooled",
        "priority",
        "progress_fractions",
        "queue_ms",
        "queue_name",
        "rendered",
        "run_ms",
        "seq",
        "sort_key",
        "started_ms",
        "status",
        "step_pcts",
        "step_times",
        "target_id",
        "user_id",
    )

    def __init__(
        self,
        *,
        seq: int,
        job_id: str,
        user_id: str,
        target_id: str,
        job_type: str,
        created_ms: int,
        planned_ms: int,
        run_ms: int,
        outcome: str,
        error: str | None = None,
        metadata: dict[str, Any] | None = None,
        done_metadata: dict[str, Any] | None = None,
        progress_fractions: tuple[float, ...] | None = None,
        details: tuple[JobKind, int] | None = None,
        pooled: bool = True,
        queue_ms: int | None = None,
        cancel_at_ms: int | None = None,
        kill_fraction: float | None = None,
        follow_up: bool = False,
        queue_name: str = "default",
    ) -> None:
        self.seq = seq
        self.id = job_id
        self.user_id = user_id
        self.target_id = target_id
        self.job_type = job_type
        self.created_ms = created_ms
        self.sort_key = (created_ms, job_id)
        # planned_ms: how long the job would run to DONE; run_ms: how long it actually runs
        # before reaching `outcome` (shorter for ERROR: it fails part-way).
        self.planned_ms = planned_ms
        self.run_ms = run_ms
        self.outcome = outcome
        self.error = error
        self.metadata = metadata
        self.done_metadata = done_metadata
        # None: this job has no `progress` field at all (the API leaves it out on some jobs).
        self.progress_fractions = progress_fractions
        self.pooled = pooled
        self.queue_ms = queue_ms
        self.cancel_at_ms = cancel_at_ms
        self.kill_fraction = kill_fraction
        self.follow_up = follow_up
        self.queue_name = queue_name
        self.priority = 5
        # (kind, seed) to draw metadata, error text, progress steps and priority from, lazily.
        self.details = details
        self.status: str | None = None  # None until the simulation reaches createdAt
        self.started_ms: int | None = None
        self.finish_ms: int | None = None
        self.completed_ms: int | None = None
        self.killed_ms: int | None = None
        self.step_times: list[int] | None = None
        self.step_pcts: list[int] | None = None
        # The API view of a job that has ended never changes again: kept once rendered.
        self.rendered: dict[str, Any] | None = None

    # -- transitions, applied by the simulation in time order ---------------------------------

    def arrive(self) -> None:
        self.status = PENDING

    def start(self, at_ms: int) -> None:
        self.status = IN_PROGRESS
        self.started_ms = at_ms
        self.finish_ms = at_ms + self.run_ms

    def _fill_details(self) -> None:
        if self.details is None:
            return
        kind, seed = self.details
        self.details = None
        rng = random.Random(seed)
        self.metadata = kind.draw_metadata(rng)
        if kind.done_keys is not None and self.metadata is not None:
            self.done_metadata = kind.done_keys(rng)
        if self.error is None and self.outcome == ERROR:
            self.error = rng.choice(kind.errors)
        self.progress_fractions = draw_progress_fractions(rng, self.planned_ms)
        self.priority = rng.choice((1, 3, 5, 5, 5, 7))

    def _steps(self) -> list[int] | None:
        """Instants of the progress steps, worked out on first use (most jobs are shown
        long after they ran, and many never are: no need to pay for it at simulation time)."""
        self._fill_details()
        if self.step_times is None and self.progress_fractions is not None and self.started_ms is not None:
            # Steps are fractions of the planned run; a failing job stops at its failure.
            times: list[int] = []
            pcts: list[int] = []
            for fraction in self.progress_fractions:
                offset = int(fraction * self.planned_ms)
                pct = min(99, int(fraction * 100))
                if offset >= self.run_ms or (pcts and pct <= pcts[-1]):
                    continue
                times.append(self.started_ms + max(1, offset))
                pcts.append(pct)
            self.step_times = times
            self.step_pcts = pcts
        return self.step_times

    def finish(self, at_ms: int) -> None:
        self.status = self.outcome
        self.completed_ms = at_ms

    def kill(self, at_ms: int) -> None:
        self.status = KILLED
        self.killed_ms = at_ms

    def compact(self) -> None:
        """Drop what only the API view needs once the job has left the live store."""
        self.details = None
        self.rendered = None
        self.metadata = None
        self.done_metadata = None
        self.progress_fractions = None
        self.step_times = None
        self.step_pcts = None

    # -- views ---------------------------------------------------------------------------------

    def status_at(self, at_ms: int) -> str | None:
        """Status at a past instant (the timeline only holds transitions already lived)."""
        if self.status is None or at_ms < self.created_ms:
            return None
        if self.killed_ms is not None and at_ms >= self.killed_ms:
            return KILLED
        if self.completed_ms is not None and at_ms >= self.completed_ms:
            return self.outcome
        if self.started_ms is not None and at_ms >= self.started_ms:
            return IN_PROGRESS
        return PENDING

    def _last_step(self, now_ms: int) -> int:
        steps = self._steps()
        if not steps:
            return -1
        return bisect_right(steps, now_ms) - 1

    def progress_at(self, now_ms: int) -> int:
        if self.status == DONE:
            return 100
        index = self._last_step(now_ms)
        return self.step_pcts[index] if index >= 0 and self.step_pcts else 0

    def updated_ms(self, now_ms: int) -> int:
        if self.completed_ms is not None:
            return self.completed_ms
        if self.killed_ms is not None:
            return self.killed_ms
        if self.started_ms is None:
            return self.created_ms
        index = self._last_step(now_ms)
        if index >= 0 and self.step_times:
            return max(self.started_ms, self.step_times[index])
        return self.started_ms

    def render(self, now_ms: int, extra_fields: bool) -> dict[str, Any]:
        """The job as GET /v1/jobs returns it at `now_ms` (the simulation's horizon).

        Callers share the returned dict: copy it before changing it.
        """
        if self.rendered is not None:
            return self.rendered
        self._fill_details()
        row: dict[str, Any] = {
            "id": self.id,
            "userId": self.user_id,
            "targetId": self.target_id,
            "type": self.job_type,
            "status": self.status,
        }
        if self.progress_fractions is not None:
            row["progress"] = self.progress_at(now_ms)
        if self.metadata is not None:
            if self.status == DONE and self.done_metadata:
                row["metadata"] = {**self.metadata, **self.done_metadata}
            else:
                row["metadata"] = self.metadata
        if self.status == ERROR and self.error is not None:
            row["error"] = self.error
        if self.started_ms is not None:
            row["startedAt"] = iso_ms(self.started_ms)
        if self.completed_ms is not None:
            row["completedAt"] = iso_ms(self.completed_ms)
        row["createdAt"] = iso_ms(self.created_ms)
        row["updatedAt"] = iso_ms(self.updated_ms(now_ms))
        if extra_fields:
            row["priority"] = self.priority
            row["queue"] = self.queue_name
        if self.status == DONE or self.status == ERROR:
            self.rendered = row
        return row

    def truth(self) -> dict[str, Any]:
        """The ground-truth record (format documented in the package docstring)."""
        created = iso_ms(self.created_ms)
        started = iso_ms(self.started_ms) if self.started_ms is not None else None
        completed = iso_ms(self.completed_ms) if self.completed_ms is not None else None
        history: list[dict[str, str]] = [{"status": PENDING, "at": created}]
        if started is not None:
            history.append({"status": IN_PROGRESS, "at": started})
        if completed is not None:
            history.append({"status": self.outcome, "at": completed})
        elif self.killed_ms is not None:
            history.append({"status": KILLED, "at": iso_ms(self.killed_ms)})
        return {
            "id": self.id,
            "userId": self.user_id,
            "targetId": self.target_id,
            "type": self.job_type,
            "createdAt": created,
            "startedAt": started,
            "completedAt": completed,
            "finalStatus": self.status,
            "history": history,
        }
