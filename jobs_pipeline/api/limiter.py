"""A blocking sliding-window rate limiter, shared process-wide per API key.

Why our own and not the `limits` package: `limits` is not in the lock, it is non-blocking (it
answers "allowed?" and leaves the waiting to the caller) and its windows are whole seconds. The
client needs to *block* until a slot frees, and the benchmarks and tests need sub-second windows,
so a small deque-based limiter is simpler than adapting one.

Semantics: at most `limit` grants in any interval of `window_seconds` (a true sliding window, not
fixed buckets, so no burst of 2x at a bucket edge). `acquire()` blocks until a slot frees. The
clock and sleep are injectable so tests can run on a fake clock.

Sharing: the API's budget (100 requests/minute) belongs to the key, not to a client object, so
every live client for the same (base URL, key) must draw from one limiter. `shared_limiter` keeps a
registry keyed by a SHA-256 fingerprint of the key (never the key itself). Entries are held
weakly: a limiter lives as long as some client uses it, so a later server that happens to reuse
a port (tests) never inherits stale grants. Clients configured with a different budget get a
different limiter (the budget is part of the registry key): disagreeing clients are a configuration
mistake the server's 429s will reveal, not something to guess around.
"""

from __future__ import annotations

import hashlib
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

_FLOAT_SLACK_SECONDS = 1e-6


class RateLimiter(Protocol):
    """What a client needs of a limiter: this module's per-process one or the cross-process
    `shared_budget.SharedRateBudget` (which can also `pause` every process for a Retry-After)."""

    limit: int
    window_seconds: float

    def acquire(self) -> Grant: ...

    def in_window(self) -> int: ...

    def pause(self, seconds: float) -> None: ...

    def settle(self, grant: Grant) -> None: ...


@dataclass(frozen=True, slots=True)
class Grant:
    """One permission to send a request: when it was granted and how long the caller waited."""

    at: float  # on the limiter's clock
    waited: float  # seconds


class SlidingWindowLimiter:
    """At most `limit` acquisitions per `window_seconds`, blocking; thread-safe."""

    def __init__(
        self,
        limit: int,
        window_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if limit < 1:
            raise ValueError(f"rate limit must be at least 1 request per window, got {limit}")
        if not window_seconds > 0:
            raise ValueError(f"rate window must be positive, got {window_seconds} s")
        self.limit = limit
        self.window_seconds = window_seconds
        self._clock = clock
        self._sleep = sleep
        self._grants: deque[float] = deque()
        self._paused_until = float("-inf")
        self._lock = threading.Lock()

    def acquire(self) -> Grant:
        """Block until a slot is free, take it, and say when."""
        started = self._clock()
        while True:
            with self._lock:
                now = self._clock()
                self._forget_before(now - self.window_seconds)
                if self._paused_until > now:
                    wait = self._paused_until - now
                elif len(self._grants) < self.limit:
                    self._grants.append(now)
                    return Grant(at=now, waited=max(0.0, now - started))
                else:
                    # The oldest grant leaves the window first; that is when a slot frees.
                    wait = self._grants[0] + self.window_seconds - now
            # Sleep outside the lock so other threads can see the state (and fake clocks can move).
            # Another thread may take the freed slot first; the loop then waits again.
            self._sleep(max(wait, 0.0))

    def settle(self, grant: Grant) -> None:
        """The request of `grant` is answered: count it from now. The server counts a request
        when it arrives, which can be later than the grant (and later than a grant made after
        it, on a busy machine); dating each grant at its answer keeps our window behind the
        server's, never ahead. Moving it to the newest end keeps the deque sorted."""
        with self._lock:
            try:
                self._grants.remove(grant.at)
            except ValueError:
                return  # already out of the window
            self._grants.append(max(self._clock(), grant.at))

    def pause(self, seconds: float) -> None:
        """The server said Retry-After: no thread of this process sends before then."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def in_window(self) -> int:
        """How many grants the current window holds (for tests and diagnostics)."""
        with self._lock:
            self._forget_before(self._clock() - self.window_seconds)
            return len(self._grants)

    def _forget_before(self, horizon: float) -> None:
        # A grant exactly `window_seconds` old has left the window: `limit` per half-open interval.
        # The slack absorbs float rounding: after sleeping `g + window - now`, the clock may read a
        # hair short of `g + window`, and a fake clock would then loop on sub-ULP sleeps forever.
        while self._grants and self._grants[0] <= horizon + _FLOAT_SLACK_SECONDS:
            self._grants.popleft()

    def __repr__(self) -> str:
        return f"SlidingWindowLimiter(limit={self.limit}, window_seconds={self.window_seconds})"


def key_fingerprint(api_key: str) -> str:
    """A stable, non-reversible name for a key: safe to log, to use as a dict key, to show."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()[:16]


_RegistryKey = tuple[str, str, int, float]
_registry: weakref.WeakValueDictionary[_RegistryKey, SlidingWindowLimiter] = weakref.WeakValueDictionary()
_registry_lock = threading.Lock()


def shared_limiter(base_url: str, api_key: str, limit: int, window_seconds: float) -> SlidingWindowLimiter:
    """The process-wide limiter for this (base URL, key, budget); created on first use."""
    registry_key = (base_url.rstrip("/"), key_fingerprint(api_key), limit, float(window_seconds))
    with _registry_lock:
        limiter = _registry.get(registry_key)
        if limiter is None:
            limiter = SlidingWindowLimiter(limit, window_seconds)
            _registry[registry_key] = limiter
        return limiter


def registry_keys() -> list[tuple[str, str, int, float]]:
    """(base URL, key fingerprint, limit, window) of each live shared limiter, for tests and diagnostics."""
    with _registry_lock:
        return list(_registry.keys())
