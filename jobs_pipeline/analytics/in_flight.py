"""In-flight concurrency over time from the jobs' [started_at, run_end) intervals.

A job is in flight from its start until its known end (see prepare.py): completion, kill, or
`as_of` while it still runs. An event sweep (+1 at a start, -1 at an end, 0 at every hour
boundary) gives the exact piecewise-constant concurrency; per bucket we report its time average
(busy_s / observed_s), its peak, and its value at the bucket's first instant. Buckets are only
observed up to `as_of`, so the current bucket's average is over its elapsed part.

Intervals are half-open, so a zero-length job (started_at == run_end, e.g. created, started and
completed in the same instant) is in flight at no instant: it adds no busy time, never raises a
bucket's peak or its at-start level, and alone produces no row. Its completion still counts in
throughput. Only the hour/day/week buckets the scope owns are emitted: a run still going past the
owned days is counted there by the refresh that owns them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import polars as pl

from jobs_pipeline.analytics.buckets import BUCKET_KEYS, Scope, restrict_to_scope, truncate
from jobs_pipeline.analytics.conventions import ALL_TYPES, GRAIN_EVERY, GRAINS
from jobs_pipeline.analytics.prepare import UTC_NAIVE, naive_utc, pick, seconds_between

IN_FLIGHT_COLUMNS: tuple[str, ...] = (
    *BUCKET_KEYS,
    "observed_s",
    "busy_s",
    "mean_in_flight",
    "max_in_flight",
    "in_flight_at_start",
)


def run_intervals(jobs: pl.DataFrame, start: datetime, end: datetime) -> pl.DataFrame:
    """The non-empty [started_at, run_end) intervals that overlap [start, end)."""
    return pick(
        jobs,
        pl.col("started_at").is_not_null()
        & pl.col("run_end").is_not_null()
        & (pl.col("run_end") > pl.col("started_at"))
        & (pl.col("started_at") < end)
        & (pl.col("run_end") > start),
        "tenant",
        "job_type",
        pl.col("started_at").alias("start"),
        pl.col("run_end").alias("end"),
    )


def _hour_grid(start: datetime, horizon: datetime) -> pl.DataFrame:
    hours = int((horizon - start) // timedelta(hours=1)) + 1
    points = [start + timedelta(hours=h) for h in range(hours) if start + timedelta(hours=h) < horizon]
    return pl.DataFrame({"t": [*points, horizon]}, schema={"t": UTC_NAIVE})


def _sweep_one(
    intervals: pl.DataFrame, grid: pl.DataFrame, start: datetime, horizon: datetime
) -> pl.DataFrame:
    """Hourly busy_s / max / at-start of one key's intervals (a plain sort on t: no per-key grouping)."""
    events = pl.concat(
        [
            intervals.select(pl.col("start").alias("t"), pl.lit(1, pl.Int64).alias("delta")),
            intervals.select(pl.col("end").alias("t"), pl.lit(-1, pl.Int64).alias("delta")),
            grid.with_columns(delta=pl.lit(0, pl.Int64)),
        ]
    ).sort("t")
    # Only the level after *all* the events of an instant is real (a job ending exactly when another
    # starts never shows a transient level; intervals are half-open): keep the last row of each t.
    levels = (
        events.with_columns(level=pl.col("delta").cum_sum())
        .filter(pl.col("t").shift(-1).is_null() | (pl.col("t") != pl.col("t").shift(-1)))
        .with_columns(next_t=pl.col("t").shift(-1))
    )
    segments = levels.filter((pl.col("t") >= start) & (pl.col("t") < horizon)).with_columns(
        seconds=seconds_between(pl.col("t"), pl.col("next_t")),
        bucket_start=truncate(pl.col("t"), "hour"),
    )
    return segments.group_by("bucket_start").agg(
        busy_s=(pl.col("level") * pl.col("seconds")).sum(),
        max_in_flight=pl.col("level").max(),
        in_flight_at_start=pl.col("level").filter(pl.col("t") == pl.col("bucket_start")).first(),
    )


def _hourly_sweep(
    intervals: pl.DataFrame, keys: Sequence[str], start: datetime, horizon: datetime
) -> pl.DataFrame:
    grid = _hour_grid(start, horizon)
    parts = []
    for part in intervals.partition_by(list(keys), maintain_order=False):
        key_values = {k: pl.lit(part[k][0], dtype=pl.String) for k in keys}
        parts.append(_sweep_one(part, grid, start, horizon).with_columns(**key_values))
    return pl.concat(parts, how="diagonal_relaxed")


def in_flight(jobs: pl.DataFrame, scope: Scope, as_of: datetime) -> pl.DataFrame:
    """stats_in_flight rows for every owned bucket in which at least one job of the key was in flight."""
    horizon = min(scope.end, naive_utc(as_of))
    intervals = run_intervals(jobs, scope.start, horizon)
    if horizon <= scope.start or intervals.is_empty():
        return _empty()
    hourly = pl.concat(
        [
            _hourly_sweep(intervals, ["tenant", "job_type"], scope.start, horizon),
            _hourly_sweep(intervals, ["tenant"], scope.start, horizon).with_columns(
                job_type=pl.lit(ALL_TYPES)
            ),
        ],
        how="diagonal_relaxed",
    ).sort("tenant", "job_type", "bucket_start")  # a fixed summation order: reproducible float sums
    horizon_lit = pl.lit(horizon, dtype=UTC_NAIVE)
    parts = []
    for grain in GRAINS:
        grouped = hourly.with_columns(bucket=truncate(pl.col("bucket_start"), grain))
        rolled = grouped.group_by("tenant", "job_type", "bucket").agg(
            busy_s=pl.col("busy_s").sum(),
            max_in_flight=pl.col("max_in_flight").max(),
            in_flight_at_start=pl.col("in_flight_at_start")
            .filter(pl.col("bucket_start") == pl.col("bucket"))
            .first(),
        )
        bucket_end = pl.col("bucket").dt.offset_by(GRAIN_EVERY[grain])
        parts.append(
            rolled.with_columns(
                bucket_grain=pl.lit(grain),
                observed_s=seconds_between(pl.col("bucket"), pl.min_horizontal(bucket_end, horizon_lit)),
            ).rename({"bucket": "bucket_start"})
        )
    combined = pl.concat(parts).filter(pl.col("busy_s") > 0)
    return (
        restrict_to_scope(combined, scope)
        .select(
            *BUCKET_KEYS,
            "observed_s",
            "busy_s",
            (pl.col("busy_s") / pl.col("observed_s")).alias("mean_in_flight"),
            pl.col("max_in_flight").cast(pl.Int64),
            pl.col("in_flight_at_start").cast(pl.Int64),
        )
        .sort(BUCKET_KEYS)
    )


def _empty() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "bucket_grain": pl.String,
            "bucket_start": UTC_NAIVE,
            "tenant": pl.String,
            "job_type": pl.String,
            "observed_s": pl.Float64,
            "busy_s": pl.Float64,
            "mean_in_flight": pl.Float64,
            "max_in_flight": pl.Int64,
            "in_flight_at_start": pl.Int64,
        }
    )
