"""Retry candidates: failed jobs whose target never succeeded afterwards (read-only advice).

An ERROR job is a candidate when no DONE job of the same tenant, target and type was created
after it. The archiver never retries anything; this only lists what a person might re-run.
A job without a target cannot be matched, so it stays a candidate.
"""

from __future__ import annotations

import polars as pl

from jobs_pipeline.analytics.conventions import DONE, ERROR

TARGET_KEYS: tuple[str, ...] = ("tenant", "target_id", "job_type")


def retry_candidates(jobs: pl.DataFrame) -> pl.DataFrame:
    """tenant, job_id, target_id, job_type, error, created_at, completed_at, later_attempts."""
    keys = list(TARGET_KEYS)
    last_success = (
        jobs.filter(pl.col("status") == DONE)
        .group_by(keys)
        .agg(pl.col("created_at").max().alias("_last_done"))
    )
    # later_attempts: jobs of the same target and type created after this one (any status).
    ranked = jobs.with_columns(
        later_attempts=pl.when(pl.col("target_id").is_not_null())
        .then(pl.len().over(keys) - pl.col("created_at").rank("max").over(keys))
        .otherwise(0)
        .cast(pl.Int64)
    )
    failed = ranked.filter(pl.col("status") == ERROR).select(
        *keys, "job_id", "error", "created_at", "completed_at", "later_attempts"
    )
    return (
        failed.join(last_success, on=keys, how="left")
        .filter(pl.col("_last_done").is_null() | (pl.col("_last_done") <= pl.col("created_at")))
        .select(
            "tenant",
            "job_id",
            "target_id",
            "job_type",
            "error",
            "created_at",
            "completed_at",
            "later_attempts",
        )
        .sort("tenant", "created_at", "job_id")
    )
