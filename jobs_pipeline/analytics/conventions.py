"""The conventions every statistic follows, stated once.

Anything here that changes a published figure (quantile method, the overall marker, the
baselines' windows, the spike threshold) is also written in the tables' column comments and in
docs/analytics-cookbook.md, so that a reader of the SQL never has to open the Python.
"""

from __future__ import annotations

from typing import Final, Literal

# ---------------------------------------------------------------------------------------------
# Quantiles. Linear interpolation between the two closest ranks (Hyndman-Fan type 7): Polars
# `quantile(q, interpolation="linear")` and DuckDB `quantile_cont(x, q)` agree exactly. Polars'
# default is "nearest", so every call passes QUANTILE_INTERPOLATION explicitly.
QUANTILE_INTERPOLATION: Final = "linear"
SQL_QUANTILE_FUNCTION: Final = "quantile_cont"
# The quantiles published for every duration figure, as (column suffix, probability).
DURATION_QUANTILES: Final[tuple[tuple[str, float], ...]] = (
    ("p50", 0.50),
    ("p90", 0.90),
    ("p95", 0.95),
    ("p99", 0.99),
)

# ---------------------------------------------------------------------------------------------
# The "all job types" row of every per-type table: job_type = '*', never NULL, so that keys stay
# NOT NULL and a filter `job_type = '*'` reads naturally in SQL.
ALL_TYPES: Final = "*"

# Time buckets, UTC. Weeks are ISO weeks (Monday 00:00 UTC), like DuckDB's date_trunc('week').
Grain = Literal["hour", "day", "week"]
GRAINS: Final[tuple[Grain, ...]] = ("hour", "day", "week")
GRAIN_EVERY: Final[dict[str, str]] = {"hour": "1h", "day": "1d", "week": "1w"}

# ---------------------------------------------------------------------------------------------
# Statuses (the API's four plus the archive's inferred KILLED).
PENDING: Final = "PENDING"
IN_PROGRESS: Final = "IN_PROGRESS"
DONE: Final = "DONE"
ERROR: Final = "ERROR"
KILLED: Final = "KILLED"
ACTIVE_STATUSES: Final[tuple[str, ...]] = (PENDING, IN_PROGRESS)

# The API lists only jobs created in the last 24 h: an active job older than that can no longer be
# observed, so what we know of it stops at its last sighting (it is not "running until now").
OBSERVABLE_HOURS: Final = 24

# ---------------------------------------------------------------------------------------------
# Intervals. 95 % two-sided normal quantile, for the Wilson score interval.
WILSON_Z: Final = 1.959963984540054

# Trailing baselines (slow jobs, failure spikes, the ETA's history curve) look at the N days
# before the bucket/day/instant they judge, never at it: a day is judged against its past.
BASELINE_DAYS: Final = 7
# Fewer completed runs than this in the baseline: no trailing p99 (the p99 of 20 runs is noise).
MIN_BASELINE_RUNS: Final = 20

# Failure spikes: one-sided binomial score test (normal approximation with continuity correction)
# of the bucket's errors against the trailing baseline rate. Flag when z >= SPIKE_Z (one-sided
# alpha = 0.001) and the bucket has at least SPIKE_MIN_ERRORS errors and the baseline at least
# SPIKE_MIN_BASELINE_FINISHED finished jobs. The baseline rate is smoothed as
# (errors + 0.5) / (finished + 1) so that a spotless baseline does not make one error a spike.
SPIKE_Z: Final = 3.090232306167813
SPIKE_MIN_ERRORS: Final = 3
SPIKE_MIN_BASELINE_FINISHED: Final = 20

# The vendor documentation's typical upper bound of a run, in seconds (API-NOTES.md).
VENDOR_TYPICAL_MAX_S: Final[dict[str, float]] = {
    "EXTRACTION": 5 * 60.0,
    "EMBEDDING": 10 * 60.0,
    "SYNC": 30 * 60.0,
    "IMPORT": 15 * 60.0,
    "TRANSCRIPTION": 5 * 60.0,
    "GENERATION": 2 * 60.0,
}

# Size-normalised speed: the metadata key holding a job's size, and the unit's name.
SIZE_UNITS: Final[dict[str, tuple[str, str]]] = {
    "EXTRACTION": ("pageCount", "page"),
    "EMBEDDING": ("totalChunks", "chunk"),
}

# ---------------------------------------------------------------------------------------------
# ETA. Progress is trusted from ETA_MIN_PROGRESS % on, fully from ETA_FULL_TRUST_PROGRESS % on;
# in between the progress estimate is blended linearly with the history estimate (the type's
# Kaplan-Meier median remaining life given the elapsed time).
ETA_MIN_PROGRESS: Final = 5
ETA_FULL_TRUST_PROGRESS: Final = 50

# Kaplan-Meier quantile: the smallest event time t with S(t) <= 1 - p. The tolerance absorbs
# float rounding of the product (e.g. 0.5 computed as 0.5000000000000001).
KM_TOLERANCE: Final = 1e-9
