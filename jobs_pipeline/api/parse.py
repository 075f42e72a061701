"""Turn the API's JSON into `Job`s, tolerantly: one bad record never sinks a page.

Rules (the archive depends on them):
- The envelope must be a JSON object with a `data` array (and `success` not false); anything else
  raises `EnvelopeError` (the client turns it into a retried `MalformedResponseError`).
- Each record becomes a `Job` or a `RejectedRecord(raw, reason, job_id)`, never silently dropped:
  `parse_records` returns exactly one outcome per input record.
- Required: `id` (non-empty string), `status` (string), `createdAt`, `updatedAt` (timestamps).
  `type` is expected; when absent it becomes "UNKNOWN" (as the vendor's own statistics do), because
  dropping a job over a missing label would lose its status history. Unknown types and statuses are
  kept as strings; unknown fields survive in `Job.raw`.
- Optional fields may be absent or null. When present they must have their documented JSON type
  (strings, an object for `metadata`); a wrong type rejects the record with a reason rather than
  guessing what the server meant.
- `progress` must be an integer in 0-100. Out-of-range values are rejected, not clamped: a clamp
  would invent a value and hide a vendor bug. JSON does not distinguish 65 from 65.0, so an
  integral float is accepted; 65.5 is not.
- Timestamps: ISO-8601 with an explicit zone (`Z` or an offset), converted to UTC exactly (no
  rounding: milliseconds, or finer digits if the server sends them). A timestamp without a zone is
  rejected: its instant is unknowable.
- Duplicate ids in one page: the first valid record wins, later valid ones are rejected with
  "duplicate id in page" (records rejected for other reasons never claim an id).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from jobs_pipeline.api.models import Job, RejectedRecord

UNKNOWN_TYPE = "UNKNOWN"
DUPLICATE_REASON = "duplicate id in page"
MIN_PROGRESS = 0
MAX_PROGRESS = 100


class EnvelopeError(ValueError):
    """The response body is not `{"success": true, "data": [...]}`."""


class _Reject(Exception):
    """Internal: carries the reason a record cannot become a Job."""


def extract_records(payload: Any) -> list[Any]:
    """The `data` array of a decoded response body, or EnvelopeError saying what is wrong."""
    if not isinstance(payload, dict):
        raise EnvelopeError(f"body is a JSON {_json_kind(payload)}, expected an object with a 'data' array")
    if payload.get("success") is False:
        server_error = payload.get("error")
        detail = f": {server_error}" if isinstance(server_error, str) else ""
        raise EnvelopeError(f"body says success=false{detail}")
    if "data" not in payload:
        raise EnvelopeError("body has no 'data' field")
    data = payload["data"]
    if not isinstance(data, list):
        raise EnvelopeError(f"'data' is a JSON {_json_kind(data)}, expected an array")
    return data


def parse_records(records: Sequence[Any]) -> tuple[tuple[Job, ...], tuple[RejectedRecord, ...]]:
    """One outcome per record, in order: jobs, and rejects with reasons (duplicates included)."""
    jobs: list[Job] = []
    rejects: list[RejectedRecord] = []
    seen_ids: set[str] = set()
    for record in records:
        outcome = parse_job(record)
        if isinstance(outcome, RejectedRecord):
            rejects.append(outcome)
        elif outcome.id in seen_ids:
            rejects.append(RejectedRecord(raw=record, reason=DUPLICATE_REASON, job_id=outcome.id))
        else:
            seen_ids.add(outcome.id)
            jobs.append(outcome)
    return tuple(jobs), tuple(rejects)


def parse_job(record: Any) -> Job | RejectedRecord:
    """A Job, or a RejectedRecord naming the first problem found. Never raises."""
    if not isinstance(record, dict):
        return RejectedRecord(raw=record, reason=f"record is a JSON {_json_kind(record)}, not an object")
    job_id = record.get("id")
    known_id = job_id if isinstance(job_id, str) and job_id else None
    try:
        return _build_job(record)
    except _Reject as reject:
        return RejectedRecord(raw=record, reason=str(reject), job_id=known_id)


def parse_timestamp(value: str) -> datetime:
    """An ISO-8601 timestamp with zone -> tz-aware UTC datetime (ValueError otherwise)."""
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(f"timestamp {value!r} has no timezone")
    try:
        return parsed.astimezone(UTC)
    except OverflowError as exc:  # e.g. year 1 with a positive offset
        raise ValueError(f"timestamp {value!r} is out of range in UTC") from exc


def _build_job(record: dict[str, Any]) -> Job:
    job_id = _required_str(record, "id")
    if not job_id:
        raise _Reject("'id' is empty")
    job_type = _optional_str(record, "type")
    return Job(
        id=job_id,
        user_id=_optional_str(record, "userId"),
        target_id=_optional_str(record, "targetId"),
        type=UNKNOWN_TYPE if job_type is None else job_type,
        status=_required_str(record, "status"),
        created_at=_required_time(record, "createdAt"),
        updated_at=_required_time(record, "updatedAt"),
        progress=_progress(record),
        metadata=_metadata(record),
        error=_optional_str(record, "error"),
        started_at=_optional_time(record, "startedAt"),
        completed_at=_optional_time(record, "completedAt"),
        raw=record,
    )


def _required_str(record: dict[str, Any], key: str) -> str:
    if record.get(key) is None:
        raise _Reject(f"missing '{key}'")
    value = _optional_str(record, key)
    assert value is not None  # checked above; narrows the type
    return value


def _optional_str(record: dict[str, Any], key: str) -> str | None:
    value = record.get(key)
    if value is None or isinstance(value, str):
        return value
    raise _Reject(f"'{key}' is a JSON {_json_kind(value)}, expected a string")


def _required_time(record: dict[str, Any], key: str) -> datetime:
    if record.get(key) is None:
        raise _Reject(f"missing '{key}'")
    value = _optional_time(record, key)
    assert value is not None
    return value


def _optional_time(record: dict[str, Any], key: str) -> datetime | None:
    text = _optional_str(record, key)
    if text is None:
        return None
    try:
        return parse_timestamp(text)
    except ValueError as exc:
        raise _Reject(f"'{key}' is not an ISO-8601 timestamp with timezone: {text[:64]!r}") from exc


def _progress(record: dict[str, Any]) -> int | None:
    value = record.get("progress")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Reject(f"'progress' is a JSON {_json_kind(value)}, expected an integer 0-100")
    if isinstance(value, float) and not value.is_integer():
        raise _Reject(f"'progress' is {value!r}, expected an integer 0-100")
    if not MIN_PROGRESS <= value <= MAX_PROGRESS:
        raise _Reject(f"'progress' is {value!r}, outside 0-100")
    return int(value)


def _metadata(record: dict[str, Any]) -> dict[str, Any] | None:
    value = record.get("metadata")
    if value is None or isinstance(value, dict):
        return value
    raise _Reject(f"'metadata' is a JSON {_json_kind(value)}, expected an object")


def _json_kind(value: Any) -> str:
    """The JSON name of a decoded value's type, for reasons a person reads."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
