"""Time as the twin keeps it: integer milliseconds since the Unix epoch, UTC.

Integer milliseconds because the API's timestamps have millisecond resolution: simulating at
that resolution means every instant the twin reports is exactly representable, and events that
share a millisecond are ordered by explicit tie-breaks instead of float noise.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

MS_PER_SECOND = 1000
MS_PER_HOUR = 3_600_000
MS_PER_DAY = 86_400_000

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def to_ms(instant: datetime) -> int:
    """An aware datetime as epoch milliseconds (floored: the API never shows sub-millisecond time)."""
    if instant.tzinfo is None:
        raise ValueError(f"naive datetime {instant!r}: the twin only deals in aware UTC instants")
    delta = instant - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * MS_PER_SECOND + delta.microseconds // 1000


def from_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


_DAY_PREFIXES: dict[int, str] = {}


def _day_prefix(day: int) -> str:
    prefix = _DAY_PREFIXES.get(day)
    if prefix is None:
        t = time.gmtime(day * 86_400)
        prefix = f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T"
        _DAY_PREFIXES[day] = prefix
    return prefix


def iso_ms(ms: int) -> str:
    """`2024-10-28T10:30:00.000Z`, the API's timestamp format (hot path: the date part is cached)."""
    day, rest = divmod(ms, MS_PER_DAY)
    seconds, millis = divmod(rest, MS_PER_SECOND)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return f"{_day_prefix(day)}{hour:02d}:{minute:02d}:{second:02d}.{millis:03d}Z"


def http_date(ms: int) -> str:
    """RFC 7231 IMF-fixdate (`Sun, 01 Nov 2026 12:00:00 GMT`), truncated to the second."""
    t = time.gmtime(ms // MS_PER_SECOND)
    return (
        f"{_WEEKDAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year:04d} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    )


def seconds_to_ms(seconds: float) -> int:
    return round(seconds * MS_PER_SECOND)
