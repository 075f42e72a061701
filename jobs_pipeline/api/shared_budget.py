"""One rate budget per API key across processes: a lock-protected file of recent request times.

Why: the API's rolling window belongs to the key, not to a process. A `jobs-pipeline sync` that
starts while the previous one's requests are still inside the server's window, a `watch` beside a
scheduled sync, two Dagster runs of one tenant: each process alone keeps to the limit, together
they overrun it and collect 429s. So every process using a key draws its grants from one small
file, `<state dir>/<base URL + key fingerprint>.json`, holding the wall-clock times of the grants
still inside the window and a `paused_until` that a 429's Retry-After sets for everyone.

- The file name is a SHA-256 fingerprint of (base URL, key): the key itself is never written.
- An exclusive `flock` on a sibling `.lock` file guards read-modify-write; the kernel drops it
  when a process dies, so a crash never blocks the others. A corrupt or unreadable state file is
  treated as empty (the worst case is a few 429s, which the client retries), never as an error.
- Each process enforces ITS limit against the grants of ALL processes: a client configured with a
  lower limit (a key shared with other software) takes at most that many of the window, counting
  everyone's requests; one with the full limit fills the rest.
- Times are wall-clock (`time.time`), the one clock every process shares. Grants dated in the
  future (the clock stepped back) are clamped to now, so a clock step delays at most one window.

The state directory is `JOBS_PIPELINE_RATE_STATE_DIR` when set (`off` keeps each process to its own
in-memory limiter, the previous behaviour), else the user cache dir (platformdirs).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import platformdirs

from jobs_pipeline.api.limiter import Grant, SlidingWindowLimiter, shared_limiter

STATE_DIR_ENV = "JOBS_PIPELINE_RATE_STATE_DIR"
SHARING_OFF = "off"
_FLOAT_SLACK_SECONDS = 1e-6
# Longest pause a Retry-After may impose on every process (the client refuses longer ones anyway).
MAX_PAUSE_SECONDS = 120.0


def state_dir_from_env() -> Path | None:
    """Where shared rate state lives, or None when sharing is switched off."""
    raw = os.environ.get(STATE_DIR_ENV)
    if raw is not None and raw.strip().lower() in (SHARING_OFF, ""):
        return None
    if raw:
        return Path(raw).expanduser()
    return Path(platformdirs.user_cache_dir("jobs_pipeline")) / "rate"


def budget_name(base_url: str, api_key: str) -> str:
    """The state file's stem: names the (server, key) pair without revealing the key."""
    digest = hashlib.sha256(f"{base_url.rstrip('/')}\n{api_key}".encode()).hexdigest()
    return digest[:24]


def key_rate_limiter(
    base_url: str, api_key: str, limit: int, window_seconds: float, state_dir: Path | None
) -> SharedRateBudget | SlidingWindowLimiter:
    """The limiter a client for (base URL, key) draws from: the cross-process budget in
    `state_dir`, or this process's own limiter when sharing is off (`state_dir` None)."""
    if state_dir is None:
        return shared_limiter(base_url, api_key, limit, window_seconds)
    return SharedRateBudget(state_dir / f"{budget_name(base_url, api_key)}.json", limit, window_seconds)


def _paused_until(state: dict[str, object]) -> float:
    value = state.get("paused_until")
    return float(value) if isinstance(value, int | float) else 0.0


class SharedRateBudget:
    """At most `limit` grants per `window_seconds` for one key, counted over every process that
    uses the same state file; blocking, thread-safe, and process-safe. Same interface as
    `SlidingWindowLimiter` (`acquire`, `in_window`), plus `pause` for a server's Retry-After."""

    def __init__(
        self,
        path: Path,
        limit: int,
        window_seconds: float,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if limit < 1:
            raise ValueError(f"rate limit must be at least 1 request per window, got {limit}")
        if not window_seconds > 0:
            raise ValueError(f"rate window must be positive, got {window_seconds} s")
        self.path = path
        self.limit = limit
        self.window_seconds = window_seconds
        self._clock = clock
        self._sleep = sleep
        self._thread_lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)

    def acquire(self) -> Grant:
        """Block until this key has a free slot in the window (and no pause), take it, say when."""
        started = self._clock()
        while True:
            with self._locked_state() as state:
                now = self._clock()
                grants = self._live(state, now)
                paused_until = min(_paused_until(state), now + MAX_PAUSE_SECONDS)
                if paused_until > now:
                    wait = paused_until - now
                elif len(grants) < self.limit:
                    grants.append(now)
                    state["grants"] = grants
                    return Grant(at=now, waited=max(0.0, now - started))
                else:
                    # The limit-th newest grant leaving the window frees this process a slot.
                    wait = grants[len(grants) - self.limit] + self.window_seconds - now
                state["grants"] = grants
            self._sleep(max(wait, 0.0) + _FLOAT_SLACK_SECONDS)

    def settle(self, grant: Grant) -> None:
        """The request of `grant` is answered: count it from now, for every process (see
        SlidingWindowLimiter.settle: the server counts a request when it arrives)."""
        with self._locked_state() as state:
            now = self._clock()
            grants = self._live(state, now)
            if grant.at in grants:
                grants.remove(grant.at)
                grants.append(max(now, grant.at))
            state["grants"] = sorted(grants)

    def pause(self, seconds: float) -> None:
        """The server said Retry-After: no process using this key sends before then."""
        if not seconds > 0:
            return
        with self._locked_state() as state:
            until = self._clock() + min(seconds, MAX_PAUSE_SECONDS)
            state["paused_until"] = max(_paused_until(state), until)

    def in_window(self) -> int:
        """How many grants (of every process) the current window holds."""
        with self._locked_state() as state:
            grants = self._live(state, self._clock())
            state["grants"] = grants
            return len(grants)

    def _live(self, state: dict[str, object], now: float) -> list[float]:
        horizon = now - self.window_seconds + _FLOAT_SLACK_SECONDS
        raw = state.get("grants")
        times = [float(t) for t in raw if isinstance(t, int | float)] if isinstance(raw, list) else []
        return sorted(min(t, now) for t in times if t > horizon)

    @contextmanager
    def _locked_state(self) -> Iterator[dict[str, object]]:
        """Read the state under the key's flock, let the caller change it, write it back."""
        lock_path = self.path.with_suffix(".lock")
        with self._thread_lock, open(lock_path, "a+b") as lock_file:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
            try:
                state = self._read()
                yield state
                self._write(state)
            finally:
                fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)

    def _read(self) -> dict[str, object]:
        try:
            loaded = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return loaded if isinstance(loaded, dict) else {}

    def _write(self, state: dict[str, object]) -> None:
        # Write-then-rename: a reader never sees half a file, even one not taking the lock.
        tmp = self.path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(state), encoding="utf-8")
        os.replace(tmp, self.path)

    def __repr__(self) -> str:
        return f"SharedRateBudget(limit={self.limit}, window_seconds={self.window_seconds})"
