"""Throughput per bucket, and Little's law as a consistency check of the in-flight figures.

Counts: arrivals (created_at), starts (started_at), completions = DONE + ERROR (by their end),
kills (vanished_at). Little's law for the "running" system, per bucket:
    L  = mean in-flight (time average, from in_flight.py)
    λ  = starts / observed seconds
    W  = mean known run time (elapsed_s) of the jobs that started in the bucket
L ≈ λ·W holds over long windows; per bucket the ratio L / (λ·W) drifts from 1 by boundary
effects (runs straddling the bucket's edges), which is what the two sides make visible.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from jobs_pipeline.analytics.buckets import BUCKET_KEYS, Scope, aggregate_additive, bucket_end
from jobs_pipeline.analytics.conventions import DONE, ERROR, KILLED
from jobs_pipeline.analytics.prepare import UTC_NAIVE, naive_utc, pick, seconds_between
from jobs_pipeline.analytics.stats import ratio


def _full_join(frames: list[pl.DataFrame]) -> pl.DataFrame:
    joined = frames[0]
    for frame in frames[1:]:
        joined = joined.join(frame, on=list(BUCKET_KEYS), how="full", coalesce=True)
    return joined


def throughput(jobs: pl.DataFrame, in_flight: pl.DataFrame, scope: Scope, as_of: datetime) -> pl.DataFrame:
    """stats_throughput rows: per (bucket, tenant, job_type) with any arrival, start, end or run."""
    arrivals = aggregate_additive(
        jobs.select("tenant", "job_type", "created_at"),
        "created_at",
        scope,
        [pl.len().cast(pl.Int64).alias("arrivals")],
    )
    starts = aggregate_additive(
        pick(jobs, pl.col("started_at").is_not_null(), "tenant", "job_type", "started_at", "elapsed_s"),
        "started_at",
        scope,
        [
            pl.len().cast(pl.Int64).alias("starts"),
            pl.col("elapsed_s").sum().alias("_elapsed_sum"),
            pl.col("elapsed_s").count().cast(pl.Int64).alias("_elapsed_count"),
        ],
    )
    ends = aggregate_additive(
        pick(
            jobs,
            pl.col("status").is_in((DONE, ERROR, KILLED)) & pl.col("finished_at").is_not_null(),
            "tenant",
            "job_type",
            "status",
            "finished_at",
        ),
        "finished_at",
        scope,
        [
            (pl.col("status") == DONE).sum().cast(pl.Int64).alias("done"),
            (pl.col("status") == ERROR).sum().cast(pl.Int64).alias("error"),
            (pl.col("status") == KILLED).sum().cast(pl.Int64).alias("killed"),
        ],
    )
    load = in_flight.select(*BUCKET_KEYS, pl.col("mean_in_flight"))
    horizon = pl.lit(naive_utc(as_of), dtype=UTC_NAIVE)
    joined = _full_join([arrivals, starts, ends, load]).with_columns(
        pl.col("arrivals", "starts", "done", "error", "killed").fill_null(0),
        pl.col("mean_in_flight").fill_null(0.0),
        mean_time_in_system_s=ratio(pl.col("_elapsed_sum"), pl.col("_elapsed_count")),
        observed_s=seconds_between(
            pl.col("bucket_start"),
            pl.min_horizontal(bucket_end(pl.col("bucket_start"), pl.col("bucket_grain")), horizon),
        ),
    )
    lambda_w = ratio(pl.col("starts"), pl.col("observed_s")) * pl.col("mean_time_in_system_s")
    return (
        joined.with_columns(completions=pl.col("done") + pl.col("error"))
        .with_columns(
            completions_per_hour=ratio(pl.col("completions") * 3600, pl.col("observed_s")),
            start_rate_per_s=ratio(pl.col("starts"), pl.col("observed_s")),
            little_lambda_w=lambda_w,
        )
        .with_columns(little_ratio=ratio(pl.col("mean_in_flight"), pl.col("little_lambda_w")))
        .select(
            *BUCKET_KEYS,
            "arrivals",
            "starts",
            "completions",
            "done",
            "error",
            "killed",
            "observed_s",
            "completions_per_hour",
            "mean_in_flight",
            "start_rate_per_s",
            "mean_time_in_system_s",
            "little_lambda_w",
            "little_ratio",
        )
        .sort(BUCKET_KEYS)
    )
