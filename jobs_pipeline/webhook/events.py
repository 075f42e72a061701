"""A job-status event as the vendor's webhook example sends it, parsed and checked.

The vendor documents the body only through its handler: `{jobId, status, targetId, type,
metadata}`. Anything else a sender adds is kept (the raw body goes to the archive). When the
body carries the job's own timestamps (the API's `updatedAt`, `startedAt`, `completedAt`,
`createdAt`, or an `occurredAt` of the event), the transition time is exact; otherwise the event
is only known to have happened before it was received.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

MAX_ID_LENGTH = 256


class EventError(ValueError):
    """The body is not a usable job-status event (the receiver answers 400 and keeps it)."""


@dataclass(frozen=True, slots=True)
class JobEvent:
    job_id: str
    status: str
    job_type: str | None
    target_id: str | None
    user_id: str | None
    occurred_at: datetime | None  # exact instant of the transition, when the body says it
    created_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    progress: int | None
    error: str | None
    metadata: dict[str, Any] | None
    raw: dict[str, Any]


def parse_event(body: bytes | str) -> JobEvent:
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise EventError(f"body is not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise EventError("body must be a JSON object")
    job_id = _text(raw, "jobId", required=True)
    status = _text(raw, "status", required=True)
    assert job_id is not None and status is not None
    if not status.replace("_", "").isalpha() or not status.isupper():
        raise EventError(f"status must be an upper-case word like DONE, got {status!r}")
    metadata = raw.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise EventError("metadata must be a JSON object when present")
    progress = raw.get("progress")
    if progress is not None and (isinstance(progress, bool) or not isinstance(progress, int)):
        raise EventError("progress must be an integer when present")
    error = raw.get("error")
    if error is None and isinstance(metadata, dict) and isinstance(metadata.get("error"), str):
        error = metadata["error"]  # the vendor's example reads the error from metadata.error
    occurred = _instant(raw, "occurredAt") or _instant(raw, "updatedAt")
    return JobEvent(
        job_id=job_id,
        status=status,
        job_type=_text(raw, "type"),
        target_id=_text(raw, "targetId"),
        user_id=_text(raw, "userId"),
        occurred_at=occurred,
        created_at=_instant(raw, "createdAt"),
        started_at=_instant(raw, "startedAt"),
        completed_at=_instant(raw, "completedAt"),
        progress=progress,
        error=error if isinstance(error, str) else None,
        metadata=metadata,
        raw=raw,
    )


def _text(raw: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = raw.get(name)
    if value is None:
        if required:
            raise EventError(f"missing field {name}")
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_ID_LENGTH:
        raise EventError(f"{name} must be a non-empty string of at most {MAX_ID_LENGTH} characters")
    return value


def _instant(raw: dict[str, Any], name: str) -> datetime | None:
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise EventError(f"{name} must be an ISO-8601 timestamp")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise EventError(f"{name} is not an ISO-8601 timestamp: {value!r}") from None
    if parsed.tzinfo is None:
        raise EventError(f"{name} must carry a time zone (e.g. Z): {value!r}")
    return parsed.astimezone(UTC)
