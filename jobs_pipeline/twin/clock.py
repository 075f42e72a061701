"""Clocks that drive the twin's notion of "now".

The twin never reads the wall clock itself: everything it serves (the 24 h window, progress,
the `Date` header) is a function of the clock it was given, so a test can freeze time, step it,
or run a day in minutes. All clocks return aware UTC datetimes and never go backwards.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


def _require_aware(instant: datetime) -> datetime:
    if instant.tzinfo is None:
        raise ValueError(f"naive datetime {instant!r}: pass an aware UTC datetime")
    return instant.astimezone(UTC)


class SteppedClock:
    """Frozen until told to move: `advance(delta)` or `set(instant)`. For tests and benchmarks."""

    def __init__(self, start: datetime) -> None:
        self._now = _require_aware(start)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        if delta < timedelta(0):
            raise ValueError("a SteppedClock only moves forward")
        with self._lock:
            self._now = self._now + delta
            return self._now

    def set(self, instant: datetime) -> datetime:
        instant = _require_aware(instant)
        with self._lock:
            if instant < self._now:
                raise ValueError(f"cannot move the clock back from {self._now} to {instant}")
            self._now = instant
            return self._now


class AcceleratedClock:
    """Twin time runs `speed` times faster than real (monotonic) time, from `start`."""

    def __init__(self, speed: float = 600.0, start: datetime | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._start = _require_aware(start) if start is not None else datetime.now(UTC)
        self._origin = time.monotonic()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=(time.monotonic() - self._origin) * self.speed)


class RealClock:
    """The machine's UTC wall clock (kept monotonic: a wall-clock step back is held flat)."""

    def __init__(self) -> None:
        self._last = datetime.now(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            self._last = max(self._last, datetime.now(UTC))
            return self._last
