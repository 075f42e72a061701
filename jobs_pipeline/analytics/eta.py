"""Remaining-time estimates for running jobs, and their backtest on completed jobs.

Two estimates of the remaining run time of a job that has run `elapsed` seconds:
- progress: elapsed * (100 - p) / p, from the job's own progress p (percent);
- history:  the median *remaining* life of the type's runs that lasted at least `elapsed`, read
            from a Kaplan-Meier curve of the trailing BASELINE_DAYS (t* - elapsed, where t* is the
            first time with S(t*) <= S(elapsed) / 2). It uses censored runs too, so a wave of
            killed runs lengthens it instead of vanishing from it.
Blend: weight w on progress, 0 below ETA_MIN_PROGRESS %, rising linearly to 1 at
ETA_FULL_TRUST_PROGRESS %; a missing estimate gives its weight to the other one.

The backtest replays the archive's snapshots of DONE jobs: at each IN_PROGRESS observation
(started_at <= observed_at < completed_at) it predicts the remaining time with the history curve
known at the start of the job's completion day (the job itself is censored in it), and compares
it with the real completed_at - observed_at.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import polars as pl

from jobs_pipeline.analytics.buckets import BUCKET_KEYS, Scope, aggregate_by_bucket, truncate
from jobs_pipeline.analytics.conventions import (
    DONE,
    ETA_FULL_TRUST_PROGRESS,
    ETA_MIN_PROGRESS,
    IN_PROGRESS,
    KM_TOLERANCE,
    QUANTILE_INTERPOLATION,
    VENDOR_TYPICAL_MAX_S,
)
from jobs_pipeline.analytics.prepare import UTC_NAIVE, naive_utc, seconds_between, to_naive_utc


def history_remaining(queries: pl.DataFrame, curves: pl.DataFrame, keys: Sequence[str]) -> pl.DataFrame:
    """Add `history_remaining_s` to `queries` (keys..., elapsed_s) from KM `curves` (keys..., time_s, survival).

    Null when the type has no curve, or when the run has outlived every run of the curve.
    """
    key_list = list(keys)
    indexed = queries.with_row_index("_row")
    known = indexed.filter(pl.col("elapsed_s").is_not_null())
    curve = curves.select(*key_list, "time_s", "survival").sort("time_s")
    at_elapsed = known.sort("elapsed_s").join_asof(
        curve,
        left_on="elapsed_s",
        right_on="time_s",
        by=key_list,
        strategy="backward",
        check_sortedness=False,
    )
    # S(elapsed): 1 before the first event; the curve holds only event times (S is a step function).
    with_target = at_elapsed.with_columns(
        _target=-(pl.col("survival").fill_null(1.0) / 2.0) - KM_TOLERANCE
    ).drop("time_s", "survival")
    by_level = curve.with_columns(_level=-pl.col("survival")).sort("_level")
    reached = with_target.sort("_target").join_asof(
        by_level.select(*key_list, "_level", pl.col("time_s").alias("_t_star")),
        left_on="_target",
        right_on="_level",
        by=key_list,
        strategy="forward",
        check_sortedness=False,
    )
    remaining = reached.select(
        "_row",
        history_remaining_s=pl.when(pl.col("_t_star") > pl.col("elapsed_s")).then(
            pl.col("_t_star") - pl.col("elapsed_s")
        ),
    )
    return indexed.join(remaining, on="_row", how="left").sort("_row").drop("_row")


def blend(elapsed: pl.Expr, progress: pl.Expr, history: pl.Expr) -> dict[str, pl.Expr]:
    """progress_remaining_s, progress_weight and remaining_s expressions (see module doc)."""
    usable = progress.is_not_null() & (progress >= ETA_MIN_PROGRESS) & (progress > 0)
    by_progress = pl.when(usable).then(elapsed * (100.0 - progress.clip(upper_bound=100)) / progress)
    trust = ((progress - ETA_MIN_PROGRESS) / (ETA_FULL_TRUST_PROGRESS - ETA_MIN_PROGRESS)).clip(0.0, 1.0)
    weight = pl.when(~usable).then(pl.lit(0.0)).when(history.is_null()).then(pl.lit(1.0)).otherwise(trust)
    remaining = (
        pl.when(~usable)
        .then(history)
        .when(history.is_null())
        .then(by_progress)
        .otherwise(weight * by_progress + (1.0 - weight) * history)
    )
    return {"progress_remaining_s": by_progress, "progress_weight": weight, "remaining_s": remaining}


def running_eta(jobs: pl.DataFrame, curves: pl.DataFrame, as_of: datetime) -> pl.DataFrame:
    """stats_running_eta rows: one per job running at as_of, from curves cut at as_of."""
    as_of_naive = naive_utc(as_of)
    as_of_lit = pl.lit(as_of_naive, dtype=UTC_NAIVE)
    running = jobs.filter(pl.col("is_running")).select(
        "tenant",
        "job_id",
        "job_type",
        "started_at",
        "progress",
        elapsed_s=seconds_between(pl.col("started_at"), as_of_lit),
    )
    estimated = history_remaining(running, curves, ["tenant", "job_type"])
    parts = blend(pl.col("elapsed_s"), pl.col("progress").cast(pl.Float64), pl.col("history_remaining_s"))
    vendor_max = pl.col("job_type").replace_strict(
        VENDOR_TYPICAL_MAX_S, default=None, return_dtype=pl.Float64
    )
    return (
        estimated.with_columns(**parts)
        .with_columns(
            as_of=as_of_lit,
            eta_at=as_of_lit
            + pl.duration(microseconds=(pl.col("remaining_s") * 1_000_000).round().cast(pl.Int64)),
            vendor_max_s=vendor_max,
        )
        .with_columns(over_vendor_max=pl.col("elapsed_s") > pl.col("vendor_max_s"))
        .select(
            "tenant",
            "as_of",
            "job_id",
            "job_type",
            "started_at",
            "elapsed_s",
            pl.col("progress").cast(pl.Int32),
            "progress_remaining_s",
            "history_remaining_s",
            "progress_weight",
            "remaining_s",
            "eta_at",
            "vendor_max_s",
            "over_vendor_max",
        )
        .sort("tenant", "job_id")
    )


def backtest_observations(snapshots: pl.DataFrame, jobs: pl.DataFrame, scope: Scope) -> pl.DataFrame:
    """IN_PROGRESS snapshots of DONE jobs completed in the scope's window, with what happened next."""
    done = jobs.filter(
        (pl.col("status") == DONE)
        & pl.col("started_at").is_not_null()
        & (pl.col("completed_at") >= scope.start)
        & (pl.col("completed_at") < scope.end)
    ).select("tenant", "job_id", "job_type", "started_at", "completed_at")
    observed = to_naive_utc(
        snapshots.select("tenant", "job_id", "observed_at", "status", "progress"), ["observed_at"]
    ).with_columns(pl.col("tenant").cast(done.schema["tenant"]))
    return (
        observed.filter(pl.col("status") == IN_PROGRESS)
        .join(done, on=["tenant", "job_id"], how="inner")
        .filter(
            (pl.col("observed_at") >= pl.col("started_at")) & (pl.col("observed_at") < pl.col("completed_at"))
        )
        .with_columns(
            elapsed_s=seconds_between(pl.col("started_at"), pl.col("observed_at")),
            actual_remaining_s=seconds_between(pl.col("observed_at"), pl.col("completed_at")),
            cutoff=truncate(pl.col("completed_at"), "day"),
        )
    )


def eta_backtest(observations: pl.DataFrame, curves: pl.DataFrame, scope: Scope) -> pl.DataFrame:
    """stats_eta_backtest rows: prediction errors per completion bucket and type (and overall)."""
    estimated = history_remaining(observations, curves, ["tenant", "job_type", "cutoff"])
    parts = blend(pl.col("elapsed_s"), pl.col("progress").cast(pl.Float64), pl.col("history_remaining_s"))
    actual = pl.col("actual_remaining_s")
    errors = (
        estimated.with_columns(**parts)
        .with_columns(
            abs_error_s=(pl.col("remaining_s") - actual).abs(),
            progress_abs_error_s=(pl.col("progress_remaining_s") - actual).abs(),
            history_abs_error_s=(pl.col("history_remaining_s") - actual).abs(),
        )
        .with_columns(ape=pl.col("abs_error_s") / actual)
    )
    stats = aggregate_by_bucket(
        errors.select(
            "tenant",
            "job_type",
            "job_id",
            "completed_at",
            "abs_error_s",
            "ape",
            "progress_abs_error_s",
            "history_abs_error_s",
        ),
        "completed_at",
        scope,
        [
            pl.col("job_id").n_unique().cast(pl.Int64).alias("jobs"),
            pl.len().cast(pl.Int64).alias("observations"),
            pl.col("abs_error_s").count().cast(pl.Int64).alias("predictions"),
            pl.col("abs_error_s").mean().alias("mae_s"),
            pl.col("ape").quantile(0.5, interpolation=QUANTILE_INTERPOLATION).alias("median_ape"),
            pl.col("ape").quantile(0.9, interpolation=QUANTILE_INTERPOLATION).alias("p90_ape"),
            pl.col("progress_abs_error_s").mean().alias("mae_progress_only_s"),
            pl.col("history_abs_error_s").mean().alias("mae_history_only_s"),
        ],
    )
    return stats.select(*BUCKET_KEYS, pl.exclude(BUCKET_KEYS))
