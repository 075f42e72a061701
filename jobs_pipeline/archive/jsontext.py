"""JSON text for the archive's JSON columns: deterministic where rows are compared, faithful where kept."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from jobs_pipeline.api.models import Job

# One encoder each, built once: json.dumps(..., separators=...) would build a new one per call.
_PAYLOAD_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)
_CANONICAL_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=str)


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces: equal values give equal text, so the merge compares metadata as strings."""
    return _CANONICAL_ENCODER.encode(value)


def payload_json(job: Job) -> str:
    """The job as the API sent it (key order and unknown fields kept), rebuilt from fields if `raw` is empty."""
    return _PAYLOAD_ENCODER.encode(job.raw if job.raw else api_shape(job))


def reject_payload_text(raw: Any) -> str:
    """A rejected record as text: JSON when it can be, its raw text otherwise (never lost)."""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, bytes | bytearray):
        return bytes(raw).decode("utf-8", errors="replace")
    try:
        return json.dumps(raw, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        return repr(raw)


def api_shape(job: Job) -> dict[str, Any]:
    """The API's JSON shape of a Job built without its raw payload (tests, webhooks)."""
    shaped: dict[str, Any] = {
        "id": job.id,
        "userId": job.user_id,
        "targetId": job.target_id,
        "type": job.type,
        "status": job.status,
    }
    if job.progress is not None:
        shaped["progress"] = job.progress
    if job.metadata is not None:
        shaped["metadata"] = job.metadata
    if job.error is not None:
        shaped["error"] = job.error
    for key, value in (
        ("createdAt", job.created_at),
        ("updatedAt", job.updated_at),
        ("startedAt", job.started_at),
        ("completedAt", job.completed_at),
    ):
        if value is not None:
            shaped[key] = iso_millis(value)
    return shaped


def iso_millis(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
