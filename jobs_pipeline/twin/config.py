"""Configuration of a twin: workload, API limits, vendor quirks and faults (all frozen values)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

# Everything FaultConfig can inject (see faults.py for what each one does on the wire).
FAULT_KINDS: tuple[str, ...] = (
    "500",
    "502",
    "503",
    "429",
    "timeout",
    "reset",
    "truncated",
    "invalid_json",
    "bad_record",
    "duplicate_ids",
    "huge_metadata",
    "odd_unicode",
)

RETRY_AFTER_FORMATS: tuple[str, ...] = ("seconds", "http-date", "none", "mixed")


@dataclass(frozen=True, slots=True)
class Burst:
    """A batch import: `count` jobs of `job_type` created within `within_seconds` from `at`.

    Each job gets its own new document target; one IMPORT job on a folder opens the batch.
    They queue behind the same worker pool as everything else, so a burst builds a backlog.
    """

    at: datetime
    count: int = 1500
    job_type: str = "EXTRACTION"
    within_seconds: float = 60.0


@dataclass(frozen=True, slots=True)
class Quirks:
    """Vendor behaviours the contract leaves open; the defaults are the strict reading."""

    # limit > 100 / offset > 1000: 400 by default; True clamps them silently to the maximum.
    clamp_over_limit: bool = False
    # Add fields the contract does not list ("priority", "queue") to every job.
    extra_fields: bool = False
    # Send the `Date` header (the server clock). False tests a client's local-clock fallback.
    date_header: bool = True


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """Random faults: each API request fails with probability `rate`, kind drawn from `kinds`.

    Draws are a pure function of (seed, request index), so a run is reproducible. Scripted
    faults (`twin.faults.fail_next`, `storm_429`) take precedence over random ones.
    """

    rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    # How long a "timeout" fault stalls before answering: longer than the client's timeout.
    timeout_seconds: float = 2.0
    # Retry-After value of an injected 429 / 503.
    retry_after_seconds: int = 1
    # Size of the string a "huge_metadata" fault puts in one job's metadata.
    huge_metadata_bytes: int = 1_000_000
    # None: derived from the twin's seed.
    seed: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError("FaultConfig.rate is a probability in [0, 1]")
        unknown = set(self.kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {FAULT_KINDS}")
        if self.rate > 0 and not self.kinds:
            raise ValueError("FaultConfig.rate > 0 needs at least one kind")


@dataclass(frozen=True, slots=True)
class TwinConfig:
    """What the simulated tenant looks like and how its API behaves.

    `jobs_per_day` is the daily average of all jobs (follow-up embeddings included); 0 gives an
    empty twin that only holds scripted jobs. `history_hours`: how long the twin has already
    been running when its clock starts. `workers`: size of the worker pool (None: sized for
    ~60 % utilisation at the average load). `rate_limit`: requests per key per sliding
    `rate_window_seconds` of real monotonic time (None: unlimited). `forget_after`: jobs older
    than this (twin time) leave the live store; `truth_retention`: how long they stay in ground
    truth (None: forever, compacted to ~200 bytes a job).
    """

    jobs_per_day: float = 6000.0
    seed: int = 0
    history_hours: float = 26.0
    api_keys: tuple[str, ...] = ("test-key",)
    rate_limit: int | None = 100
    rate_window_seconds: float = 60.0
    retry_after_format: str = "seconds"
    faults: FaultConfig = field(default_factory=FaultConfig)
    bursts: tuple[Burst, ...] = ()
    quirks: Quirks = field(default_factory=Quirks)
    workers: int | None = None
    target_utilisation: float = 0.6
    # Daily cycle: rate = mean * (1 + amplitude * cos(2π (hour - peak_hour_utc) / 24)).
    daily_amplitude: float = 0.5
    peak_hour_utc: float = 15.0
    forget_after: timedelta = timedelta(hours=48)
    truth_retention: timedelta | None = None

    def __post_init__(self) -> None:
        if self.jobs_per_day < 0:
            raise ValueError("jobs_per_day must be >= 0")
        if self.history_hours < 0:
            raise ValueError("history_hours must be >= 0")
        if not 0.0 <= self.daily_amplitude < 1.0:
            raise ValueError("daily_amplitude must be in [0, 1)")
        if self.retry_after_format not in RETRY_AFTER_FORMATS:
            raise ValueError(f"retry_after_format must be one of {RETRY_AFTER_FORMATS}")
        if self.workers is not None and self.workers < 1:
            raise ValueError("workers must be >= 1")
        if self.forget_after <= timedelta(hours=25):
            # The API shows 24 h; the live store must hold at least that plus a margin.
            raise ValueError("forget_after must exceed 25 hours")
        if self.truth_retention is not None and self.truth_retention < self.forget_after:
            raise ValueError("truth_retention must be >= forget_after (or None)")
        if self.rate_limit is not None and self.rate_limit < 1:
            raise ValueError("rate_limit must be >= 1 (or None for no limit)")
