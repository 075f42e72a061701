"""Failure and kill rates per bucket and job type, with Wilson 95 % score intervals.

- failure_rate = ERROR / (DONE + ERROR): how often a job that ran to its end failed;
- killed_rate  = KILLED / (DONE + ERROR + KILLED): how often a job disappeared instead (the API
  hides KILLED jobs; the archive infers them), kept apart so kills never dilute failures.

A job counts in the bucket of its end: completed_at (updated_at when absent) for DONE/ERROR,
vanished_at for KILLED.
"""

from __future__ import annotations

import polars as pl

from jobs_pipeline.analytics.buckets import Scope, aggregate_additive
from jobs_pipeline.analytics.conventions import DONE, ERROR, KILLED
from jobs_pipeline.analytics.prepare import pick
from jobs_pipeline.analytics.stats import ratio, wilson_bounds


def failure_rates(jobs: pl.DataFrame, scope: Scope) -> pl.DataFrame:
    """stats_failure_rates rows: one per (bucket, tenant, job_type) with at least one ended job."""
    ended = pick(
        jobs,
        pl.col("status").is_in((DONE, ERROR, KILLED)) & pl.col("finished_at").is_not_null(),
        "tenant",
        "job_type",
        "status",
        "finished_at",
    )
    counts = aggregate_additive(
        ended,
        "finished_at",
        scope,
        [
            (pl.col("status") == DONE).sum().cast(pl.Int64).alias("done"),
            (pl.col("status") == ERROR).sum().cast(pl.Int64).alias("error"),
            (pl.col("status") == KILLED).sum().cast(pl.Int64).alias("killed"),
        ],
    )
    finished = pl.col("done") + pl.col("error")
    ended_all = finished + pl.col("killed")
    failure_lower, failure_upper = wilson_bounds(pl.col("error"), finished)
    killed_lower, killed_upper = wilson_bounds(pl.col("killed"), ended_all)
    return counts.with_columns(
        failure_rate=ratio(pl.col("error"), finished),
        failure_rate_lower=failure_lower,
        failure_rate_upper=failure_upper,
        killed_rate=ratio(pl.col("killed"), ended_all),
        killed_rate_lower=killed_lower,
        killed_rate_upper=killed_upper,
    )
