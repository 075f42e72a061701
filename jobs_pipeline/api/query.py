"""Validate and encode the query of GET /v1/jobs, so the client never sends what the API forbids.

The API caps `limit` at 100 and `offset` at 1000; a server may clamp or refuse over-cap values,
and either would silently change what a page means, so over-cap values are refused here, before
anything is sent. Its `type` parameter filters by STATUS (the vendor doc's table), so a job TYPE
there is a programming error, reported as such.
"""

from __future__ import annotations

from jobs_pipeline.api.models import MAX_LIMIT, MAX_OFFSET, QUERYABLE_STATUSES, JobType

_JOB_TYPES = frozenset(JobType)


def check_limit(limit: int, *, name: str = "limit") -> None:
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise ValueError(f"{name} must be an int, got {type(limit).__name__}")
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"{name}={limit} is outside 1..{MAX_LIMIT} (the API's page size cap)")


def check_offset(offset: int, *, name: str = "offset") -> None:
    if isinstance(offset, bool) or not isinstance(offset, int):
        raise ValueError(f"{name} must be an int, got {type(offset).__name__}")
    if not 0 <= offset <= MAX_OFFSET:
        raise ValueError(
            f"{name}={offset} is outside 0..{MAX_OFFSET} (the API's offset cap): "
            "rows deeper than offset 1000 must be reached with narrower slices, not a bigger offset"
        )


def check_status(status: str | None) -> None:
    if status is None or status in QUERYABLE_STATUSES:
        return
    if status in _JOB_TYPES:
        raise ValueError(
            f"status={status!r} is a job TYPE, not a status: the API's `type` query parameter filters "
            f"by status ({', '.join(QUERYABLE_STATUSES)}). Fetch without it and filter job types on "
            "our side (monitor.wait_for_job(job_type=...) does)."
        )
    raise ValueError(f"status={status!r} is not one of {', '.join(QUERYABLE_STATUSES)}")


def check_target_id(target_id: str | None) -> None:
    if target_id is None:
        return
    if not isinstance(target_id, str) or not target_id.strip():
        raise ValueError(f"target_id must be a non-empty string or None, got {target_id!r}")


def jobs_query(*, status: str | None, target_id: str | None, limit: int, offset: int) -> dict[str, str]:
    """The validated query parameters, in a stable order (targetId, type, limit, offset)."""
    check_status(status)
    check_target_id(target_id)
    check_limit(limit)
    check_offset(offset)
    params: dict[str, str] = {}
    if target_id is not None:
        params["targetId"] = target_id
    if status is not None:
        params["type"] = str(status)
    # Always explicit: the server's default limit is 25, and an explicit offset makes logs unambiguous.
    params["limit"] = str(limit)
    params["offset"] = str(offset)
    return params
