"""The two HTTP headers that carry time: `Date` (the server's clock) and `Retry-After`.

The server's clock matters twice: the API's 24 h window is measured on it, so a page is stamped
with `Date` rather than our clock; and a `Retry-After` given as an HTTP date must be measured
against the same clock (the server's `Date`), or any skew between the machines (or a simulated
clock in the twin) would turn it into a nonsense wait.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def parse_http_date(value: str | None) -> datetime | None:
    """An RFC 9110 HTTP date (`Date`, `Retry-After`) as tz-aware UTC, or None if absent/unparseable."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    # "-0000" (and obsolete zone-less forms) come back naive; HTTP dates are GMT by definition.
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_retry_after(value: str | None, server_now: datetime) -> float | None:
    """Seconds to wait per a `Retry-After` header (delta-seconds or HTTP date), or None.

    `server_now` is the response's own `Date` when present (same clock as the header), else the
    local clock. A date in the past means "now" (0 s). Garbage means "no advice" (None), so the
    caller falls back to its own backoff.
    """
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        when = parse_http_date(text)
        if when is None:
            return None
        return max(0.0, (when - server_now).total_seconds())
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds
