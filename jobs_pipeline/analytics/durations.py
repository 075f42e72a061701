"""Run time, queue wait and end-to-end duration distributions per bucket and job type.

Which jobs, and which bucket:
- run_time   (completed - started) of DONE jobs, bucketed by completed_at;
- end_to_end (completed - created) of DONE jobs, bucketed by completed_at;
- queue_wait (started - created) of every job that started, bucketed by started_at.

Failed and killed runs are not mixed into the success durations (a burst of fast failures would
make them look *better*); they are counted in stats_failure_rates and enter stats_survival as
censored runs, which is where an incident shows up as longer, never shorter, durations.
"""

from __future__ import annotations

import polars as pl

from jobs_pipeline.analytics.buckets import Scope, aggregate_by_bucket
from jobs_pipeline.analytics.conventions import DONE
from jobs_pipeline.analytics.prepare import pick
from jobs_pipeline.analytics.stats import duration_summary

# metric -> (seconds column, bucketing timestamp, only DONE jobs?)
DURATION_METRICS: dict[str, tuple[str, str, bool]] = {
    "run_time": ("run_time_s", "completed_at", True),
    "queue_wait": ("queue_wait_s", "started_at", False),
    "end_to_end": ("end_to_end_s", "completed_at", True),
}


def duration_stats(jobs: pl.DataFrame, scope: Scope) -> pl.DataFrame:
    """stats_durations rows: one per (bucket, tenant, job_type, metric) holding at least one value."""
    parts = []
    for metric, (column, time_column, done_only) in DURATION_METRICS.items():
        wanted = pl.col(column).is_not_null()
        if done_only:
            wanted = wanted & (pl.col("status") == DONE)
        rows = pick(jobs, wanted, "tenant", "job_type", time_column, column)
        stats = aggregate_by_bucket(rows, time_column, scope, duration_summary(column))
        parts.append(stats.with_columns(metric=pl.lit(metric)))
    combined = pl.concat(parts)
    return combined.select(
        "bucket_grain",
        "bucket_start",
        "tenant",
        "job_type",
        "metric",
        pl.col("count").cast(pl.Int64),
        "mean_s",
        "p50_s",
        "p90_s",
        "p95_s",
        "p99_s",
        "max_s",
    )
