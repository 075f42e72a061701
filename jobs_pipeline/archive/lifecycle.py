"""The job lifecycle PENDING -> IN_PROGRESS -> DONE|ERROR, and how a jump between polls is filled in.

Pure Python (no DuckDB, no Polars): the merge asks it once per distinct kind of move in a sync.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobs_pipeline.api.models import JobStatus

PENDING = str(JobStatus.PENDING)
IN_PROGRESS = str(JobStatus.IN_PROGRESS)
KILLED = str(JobStatus.KILLED)

# KILLED ranks with the terminal statuses: should the API ever return it, it ends the lifecycle.
LIFECYCLE_RANK: dict[str, int] = {
    PENDING: 0,
    IN_PROGRESS: 1,
    str(JobStatus.DONE): 2,
    str(JobStatus.ERROR): 2,
    KILLED: 2,
}
# Unknown statuses sort before every known one when two observations share an updatedAt.
UNKNOWN_RANK = -1

# Which API timestamp dates each kind of step exactly.
CREATED_AT = "created_at"
STARTED_AT = "started_at"
COMPLETED_AT = "completed_at"


def rank(status: str) -> int:
    return LIFECYCLE_RANK.get(status, UNKNOWN_RANK)


@dataclass(frozen=True, slots=True)
class Step:
    from_status: str | None
    to_status: str
    # The job field holding the exact instant of this step, or None when the step is off-lifecycle
    # (then only the interval between two observations is known).
    timestamp_field: str | None


def lifecycle_steps(from_status: str | None, to_status: str, *, has_started: bool) -> tuple[Step, ...]:
    """The status changes that explain a job going from `from_status` (None = not yet created) to `to_status`.

    Skipped lifecycle steps are filled in (a job first seen DONE was created PENDING, then started);
    a terminal job that never got a startedAt went straight from PENDING to its end. Anything
    off-lifecycle (unknown status, a move backwards, DONE -> ERROR) is one direct step.
    """
    if from_status == to_status:
        return ()
    on_lifecycle = to_status in LIFECYCLE_RANK and (from_status is None or from_status in LIFECYCLE_RANK)
    if not on_lifecycle:
        return (Step(from_status, to_status, None),)
    steps: list[Step] = []
    current = from_status
    if current is None:
        steps.append(Step(None, PENDING, CREATED_AT))
        current = PENDING
        if to_status == PENDING:
            return tuple(steps)
    if rank(to_status) <= rank(current):
        return (*steps, Step(current, to_status, None))
    if current == PENDING and (to_status == IN_PROGRESS or has_started):
        steps.append(Step(PENDING, IN_PROGRESS, STARTED_AT))
        current = IN_PROGRESS
    if to_status != current:
        steps.append(Step(current, to_status, COMPLETED_AT))
    return tuple(steps)
