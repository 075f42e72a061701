"""Job-type mix per bucket: how many jobs of each type were submitted, and what they cost.

Bucketed by created_at (submission). `run_time_s` is the cost: the known run time of those jobs
(`elapsed_s`: to completion, to the kill, or so far for a job still running at as_of). Shares are
of the bucket's all-types total; the '*' row carries the totals (share 1).
"""

from __future__ import annotations

import polars as pl

from jobs_pipeline.analytics.buckets import Scope, aggregate_additive
from jobs_pipeline.analytics.conventions import ALL_TYPES
from jobs_pipeline.analytics.stats import ratio


def type_mix(jobs: pl.DataFrame, scope: Scope) -> pl.DataFrame:
    """stats_type_mix rows: one per (bucket, tenant, job_type) with at least one submitted job."""
    counts = aggregate_additive(
        jobs.select("tenant", "job_type", "created_at", "elapsed_s"),
        "created_at",
        scope,
        [
            pl.len().cast(pl.Int64).alias("jobs"),
            pl.col("elapsed_s").sum().alias("run_time_s"),
        ],
    )
    totals = counts.filter(pl.col("job_type") == ALL_TYPES).select(
        "bucket_grain",
        "bucket_start",
        "tenant",
        pl.col("jobs").alias("total_jobs"),
        pl.col("run_time_s").alias("total_run_time_s"),
    )
    return (
        counts.join(totals, on=["bucket_grain", "bucket_start", "tenant"], how="left")
        .with_columns(
            jobs_share=ratio(pl.col("jobs"), pl.col("total_jobs")),
            run_time_share=ratio(pl.col("run_time_s"), pl.col("total_run_time_s")),
        )
        .select(
            "bucket_grain",
            "bucket_start",
            "tenant",
            "job_type",
            "jobs",
            "jobs_share",
            "run_time_s",
            "run_time_share",
        )
    )
