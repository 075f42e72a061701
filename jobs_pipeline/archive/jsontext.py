"""JSON text for the archive's JSON columns: deterministic where rows are compared, faithful where kept."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from jobs_pipeline.api.models import Job
from jobs_pipeline.archive.fastjson import stdlib_json


# The frames encode whole columns at once with jsoncolumn.py (orjson), to exactly these texts.
def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces: equal values give equal text, so the merge compares metadata as strings."""
    return stdlib_json(value, sort_keys=True)


def payload_json(job: Job) -> str:
    """The job as the API sent it (key order and unknown fields kept), rebuilt from fields if `raw` is empty."""
    return stdlib_json(payload_value(job))


def payload_value(job: Job) -> dict[str, Any]:
    """What `payload_json` encodes."""
    return job.raw if job.raw else api_shape(job)


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
