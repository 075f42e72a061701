"""The query string of GET /v1/jobs: parsing and validation, as strict as the contract.

`type` filters by STATUS (the vendor's naming); a job type there is a 400. `limit` is 1..100
(default 25), `offset` 0..1000; negatives and non-integers are 400, values over the maximum
are 400 unless the clamp quirk is on. Unknown parameters are ignored, repeated ones are 400.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

QUERYABLE_STATUSES = ("PENDING", "IN_PROGRESS", "DONE", "ERROR")
DEFAULT_LIMIT = 25
MAX_LIMIT = 100
MAX_OFFSET = 1000
_DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True, slots=True)
class JobsQuery:
    status: str | None = None
    target_id: str | None = None
    limit: int = DEFAULT_LIMIT
    offset: int = 0


class QueryError(ValueError):
    """A 400: the message goes to the client in the error envelope."""


def _integer(name: str, raw: str, minimum: int, maximum: int, clamp: bool) -> int:
    if not _DIGITS.fullmatch(raw):
        raise QueryError(f"Invalid '{name}': expected an integer between {minimum} and {maximum}")
    value = int(raw)
    if value < minimum:
        raise QueryError(f"Invalid '{name}': must be >= {minimum}")
    if value > maximum:
        if clamp:
            return maximum
        raise QueryError(f"Invalid '{name}': must be <= {maximum}")
    return value


def parse_jobs_query(params: dict[str, list[str]], clamp_over_limit: bool = False) -> JobsQuery:
    for name in ("type", "targetId", "limit", "offset"):
        if len(params.get(name, ())) > 1:
            raise QueryError(f"Invalid '{name}': given more than once")
    status = params["type"][0] if "type" in params else None
    if status is not None and status not in QUERYABLE_STATUSES:
        raise QueryError(f"Invalid 'type': must be one of {', '.join(QUERYABLE_STATUSES)}")
    limit = DEFAULT_LIMIT
    if "limit" in params:
        limit = _integer("limit", params["limit"][0], 1, MAX_LIMIT, clamp_over_limit)
    offset = 0
    if "offset" in params:
        offset = _integer("offset", params["offset"][0], 0, MAX_OFFSET, clamp_over_limit)
    target_id = params["targetId"][0] if "targetId" in params else None
    return JobsQuery(status=status, target_id=target_id, limit=limit, offset=offset)
