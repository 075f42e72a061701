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
from datetime import datetime, timedelta

import polars as pl

from jobs_pipeline.analytics.buckets import BUCKET_KEYS, Scope, aggregate_by_bucket, within
from jobs_pipeline.analytics.conventions import (
    BASELINE_DAYS,
    DONE,
    ETA_FULL_TRUST_PROGRESS,
    ETA_MIN_PROGRESS,
    IN_PROGRESS,
    KM_TOLERANCE,
    QUANTILE_INTERPOLATION,
    VENDOR_TYPICAL_MAX_S,
)
from jobs_pipeline.analytics.prepare import UTC_NAIVE, naive_utc, pick, seconds_between, to_naive_utc
from jobs_pipeline.analytics.survival import sorted_runs, window_curve


def history_remaining(queries: pl.DataFrame, curves: pl.DataFrame, keys: Sequence[str]) -> pl.DataFrame:
    """Add `history_remaining_s` to `queries` (keys..., elapsed_s) from KM `curves` (keys..., time_s, survival).

    Null when the type has no curve, or when the run has outlived every run of the curve.
    """
    key_list = list(keys)
    # Narrow frames (keys, value, row number): sorting and joining millions of snapshots is
    # dominated by the columns carried along. The asof joins need each frame sorted within each
    # `by` group only; within a group, time order is also -S order (S decreases), so one sort of
    # the curve serves both joins.
    narrow = (
        queries.select(*key_list, "elapsed_s")
        .with_row_index("_row")
        .filter(pl.col("elapsed_s").is_not_null())
        .sort("elapsed_s")
    )
    curve = curves.select(*key_list, "time_s", "survival").sort("time_s")
    at_elapsed = narrow.join_asof(
        curve,
        left_on="elapsed_s",
        right_on="time_s",
        by=key_list,
        strategy="backward",
        check_sortedness=False,
    )
    # S(elapsed): 1 before the first event (the curve holds only event times: S is a step function).
    # t* = the first event time with S(t*) <= S(elapsed) / 2, found on -S (increasing with time).
    with_target = at_elapsed.select(
        "_row", *key_list, "elapsed_s", _target=-(pl.col("survival").fill_null(1.0) / 2.0) - KM_TOLERANCE
    ).sort("_target")
    reached = with_target.join_asof(
        curve.select(*key_list, _level=-pl.col("survival"), _t_star=pl.col("time_s")),
        left_on="_target",
        right_on="_level",
        by=key_list,
        strategy="forward",
        check_sortedness=False,
    )
    remaining = reached.select(
        "_row",
        pl.when(pl.col("_t_star") > pl.col("elapsed_s")).then(pl.col("_t_star") - pl.col("elapsed_s")),
    ).to_series(1)
    rows = reached["_row"]
    result = pl.repeat(None, queries.height, dtype=pl.Float64, eager=True).alias("history_remaining_s")
    if rows.len():
        result = result.scatter(rows, remaining)
    return queries.with_columns(result)


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
    running = pick(
        jobs,
        pl.col("is_running"),
        "tenant",
        "job_id",
        "job_type",
        "started_at",
        "progress",
        seconds_between(pl.col("started_at"), as_of_lit).alias("elapsed_s"),
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


def usable_snapshots(snapshots: pl.DataFrame, tenant_dtype: pl.DataType) -> pl.DataFrame:
    """job_id, observed_at (naive UTC), progress (and tenant when given) of the IN_PROGRESS snapshots.

    `snapshots` needs job_id, observed_at, progress; tenant and status are honoured when present.
    """
    observed = to_naive_utc(snapshots, ["observed_at"])
    if "status" in observed.columns:
        observed = observed.filter(pl.col("status") == IN_PROGRESS)
    if "tenant" in observed.columns:
        return observed.select(pl.col("tenant").cast(tenant_dtype), "job_id", "observed_at", "progress")
    return observed.select("job_id", "observed_at", "progress")


def backtest_observations(snapshots: pl.DataFrame, done: pl.DataFrame) -> pl.DataFrame:
    """The snapshots (from `usable_snapshots`) of the `done` jobs taken while they ran, and what came next.

    done: tenant, job_id, job_type, started_at, completed_at of DONE jobs.
    """
    on = ["tenant", "job_id"] if "tenant" in snapshots.columns else ["job_id"]
    return (
        snapshots.join(done, on=on, how="inner")
        .filter(
            (pl.col("observed_at") >= pl.col("started_at")) & (pl.col("observed_at") < pl.col("completed_at"))
        )
        .select(
            "tenant",
            "job_type",
            "job_id",
            "completed_at",
            "progress",
            elapsed_s=seconds_between(pl.col("started_at"), pl.col("observed_at")),
            actual_remaining_s=seconds_between(pl.col("observed_at"), pl.col("completed_at")),
        )
    )


def _errors(observations: pl.DataFrame, curve: pl.DataFrame) -> pl.DataFrame:
    """Per observation: the blended, progress-only and history-only absolute errors, and the APE."""
    estimated = history_remaining(observations, curve, ["tenant", "job_type"])
    parts = blend(pl.col("elapsed_s"), pl.col("progress").cast(pl.Float64), pl.col("history_remaining_s"))
    actual = pl.col("actual_remaining_s")
    return estimated.with_columns(**parts).select(
        "tenant",
        "job_type",
        "job_id",
        "completed_at",
        abs_error_s=(pl.col("remaining_s") - actual).abs(),
        ape=(pl.col("remaining_s") - actual).abs() / actual,
        progress_abs_error_s=(pl.col("progress_remaining_s") - actual).abs(),
        history_abs_error_s=(pl.col("history_remaining_s") - actual).abs(),
    )


BACKTEST_AGGREGATIONS: tuple[pl.Expr, ...] = (
    pl.col("job_id").n_unique().cast(pl.Int64).alias("jobs"),
    pl.len().cast(pl.Int64).alias("observations"),
    pl.col("abs_error_s").count().cast(pl.Int64).alias("predictions"),
    pl.col("abs_error_s").mean().alias("mae_s"),
    pl.col("ape").quantile(0.5, interpolation=QUANTILE_INTERPOLATION).alias("median_ape"),
    pl.col("ape").quantile(0.9, interpolation=QUANTILE_INTERPOLATION).alias("p90_ape"),
    pl.col("progress_abs_error_s").mean().alias("mae_progress_only_s"),
    pl.col("history_abs_error_s").mean().alias("mae_history_only_s"),
)


def eta_backtest(snapshots: pl.DataFrame, jobs: pl.DataFrame, scope: Scope) -> pl.DataFrame:
    """stats_eta_backtest rows: prediction errors per completion bucket and type (and overall).

    Processed one ISO week at a time, one completion day (= one history curve) at a time inside it:
    every bucket of the scope lies in one week, and memory stays bounded by a week of snapshots.
    """
    done = pick(
        jobs,
        (pl.col("status") == DONE)
        & pl.col("started_at").is_not_null()
        & (pl.col("completed_at") >= scope.start)
        & (pl.col("completed_at") < scope.end),
        "tenant",
        "job_id",
        "job_type",
        "started_at",
        "completed_at",
    )
    runs = sorted_runs(jobs)
    usable = usable_snapshots(snapshots, done.schema["tenant"])
    parts = []
    week = scope.start
    while week < scope.end:
        week_end = week + timedelta(days=7)
        observations = backtest_observations(usable, done.filter(within("completed_at", week, week_end)))
        errors = []
        for offset in range(7):
            day = week + timedelta(days=offset)
            of_day = observations.filter(within("completed_at", day, day + timedelta(days=1)))
            if of_day.is_empty():
                continue
            curve = window_curve(runs, day, BASELINE_DAYS)
            errors.append(_errors(of_day, curve))
        if errors:
            parts.append(aggregate_by_bucket(pl.concat(errors), "completed_at", scope, BACKTEST_AGGREGATIONS))
        week = week_end
    if not parts:
        return _empty_backtest()
    return pl.concat(parts).select(*BUCKET_KEYS, pl.exclude(BUCKET_KEYS))


def _empty_backtest() -> pl.DataFrame:
    schema: dict[str, pl.DataType] = {
        "bucket_grain": pl.String(),
        "bucket_start": UTC_NAIVE,
        "tenant": pl.String(),
        "job_type": pl.String(),
    }
    for name in ("jobs", "observations", "predictions"):
        schema[name] = pl.Int64()
    for name in ("mae_s", "median_ape", "p90_ape", "mae_progress_only_s", "mae_history_only_s"):
        schema[name] = pl.Float64()
    return pl.DataFrame(schema=schema)
