"""The API's rate limit: N requests per key in a sliding window of REAL time.

Real monotonic time on purpose: the twin clock may be frozen (stepped) or racing (accelerated),
but a client's retry/backoff logic lives in real time. Benchmarks shrink the window instead.
Only accepted requests count: a client hammering through its 429s is not punished further.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable


class SlidingWindowLimiter:
    def __init__(
        self,
        limit: int | None,
        window_seconds: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self._monotonic = monotonic
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str) -> float | None:
        """None if the request may proceed (and counts it), else seconds until a slot frees."""
        if self.limit is None:
            return None
        now = self._monotonic()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window_seconds:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(0.0, hits[0] + self.window_seconds - now)
            hits.append(now)
            return None

    @staticmethod
    def retry_after_seconds(wait: float) -> int:
        """Whole seconds a client must wait (never 0: "retry now" would just fail again)."""
        return max(1, math.ceil(wait))
