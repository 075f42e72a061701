"""Kaplan-Meier survival of run time, with unfinished runs right-censored.

A run is an *event* when the job completed (DONE). Every other run is censored where our
knowledge of it stops: a job still running at `as_of` (as_of - started_at), a KILLED job at
vanished_at, a failed job at its failure (a failure says only that success would have taken
longer), a job lost from the API's view at its last sighting. Censoring a run instead of
dropping it can only keep the at-risk set larger, so the estimated survival never goes down:
an incident that kills or fails long runs makes durations look longer, never shorter.

KM quantile convention: the p-quantile is the smallest event time t with S(t) <= 1 - p
(+ KM_TOLERANCE for float rounding); null when the curve never gets that low.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import polars as pl

from jobs_pipeline.analytics.buckets import BUCKET_KEYS, Scope, assign_bucket
from jobs_pipeline.analytics.conventions import ALL_TYPES, GRAINS, KM_TOLERANCE, QUANTILE_INTERPOLATION
from jobs_pipeline.analytics.prepare import UTC_NAIVE, pick, seconds_between, with_string_keys

CURVE_COLUMNS: tuple[str, ...] = ("time_s", "at_risk", "events", "survival")


def km_curve(samples: pl.DataFrame, keys: Sequence[str]) -> pl.DataFrame:
    """Kaplan-Meier curve per `keys` group from `duration_s` (>= 0) and boolean `event`.

    One row per distinct event time: keys, time_s, at_risk (runs lasting >= t), events (ending at
    t), survival S(t) = prod over event times u <= t of (1 - events_u / at_risk_u).
    Censored runs at t count as still at risk at t (the usual convention).
    """
    key_list = list(keys)
    # One single-column sort, then per-group cumulative operations over it (a multi-column sort on
    # the keys is several times slower at scale); within a group, rows keep the duration order.
    per_time = (
        samples.group_by(*key_list, "duration_s")
        .agg(events=pl.col("event").sum().cast(pl.Int64), leaving=pl.len().cast(pl.Int64))
        .sort("duration_s")
    )
    with_risk = per_time.with_columns(at_risk=pl.col("leaving").cum_sum(reverse=True).over(key_list))
    return (
        with_risk.filter(pl.col("events") > 0)
        .with_columns(
            survival=(1.0 - pl.col("events") / pl.col("at_risk")).cum_prod().over(key_list),
        )
        .select(*key_list, pl.col("duration_s").alias("time_s"), "at_risk", "events", "survival")
    )


def km_quantile(curve: pl.DataFrame, keys: Sequence[str], probability: float, name: str) -> pl.DataFrame:
    """Per group, the smallest event time with S(t) <= 1 - probability (see module doc)."""
    threshold = 1.0 - probability + KM_TOLERANCE
    return curve.group_by(list(keys)).agg(
        pl.col("time_s").filter(pl.col("survival") <= threshold).min().alias(name)
    )


def run_samples(jobs: pl.DataFrame) -> pl.DataFrame:
    """Started runs as KM samples: duration_s = elapsed_s, event = completed (DONE)."""
    return pick(
        jobs,
        pl.col("elapsed_s").is_not_null(),
        "tenant",
        "job_type",
        "started_at",
        pl.col("elapsed_s").alias("duration_s"),
        (pl.col("end_kind") == "done").alias("event"),
        "end_kind",
    )


def survival_stats(jobs: pl.DataFrame, scope: Scope) -> pl.DataFrame:
    """stats_survival rows: KM of runs *started* in each owned bucket, per type and overall."""
    samples = run_samples(jobs)
    parts = []
    for grain in GRAINS:
        bucketed = assign_bucket(samples, "started_at", grain, scope)
        for by_type in (True, False):
            group = bucketed if by_type else bucketed.with_columns(job_type=pl.lit(ALL_TYPES))
            parts.append(
                _summarise(group, ["tenant", "bucket_start", "job_type"]).with_columns(
                    bucket_grain=pl.lit(grain)
                )
            )
    return (
        pl.concat(parts)
        .select(
            *BUCKET_KEYS,
            "jobs",
            "events",
            "censored",
            "censored_running",
            "censored_killed",
            "censored_error",
            "censored_lost",
            "km_median_s",
            "km_p90_s",
            "completed_p50_s",
            "completed_p90_s",
        )
        .sort(BUCKET_KEYS)
    )


def _summarise(samples: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    kind = pl.col("end_kind")
    completed = pl.col("duration_s").filter(pl.col("event"))
    counts = samples.group_by(keys).agg(
        jobs=pl.len().cast(pl.Int64),
        events=pl.col("event").sum().cast(pl.Int64),
        censored=(~pl.col("event")).sum().cast(pl.Int64),
        censored_running=(kind == "running").sum().cast(pl.Int64),
        censored_killed=(kind == "killed").sum().cast(pl.Int64),
        censored_error=(kind == "error").sum().cast(pl.Int64),
        censored_lost=(kind == "lost").sum().cast(pl.Int64),
        completed_p50_s=completed.quantile(0.5, interpolation=QUANTILE_INTERPOLATION),
        completed_p90_s=completed.quantile(0.9, interpolation=QUANTILE_INTERPOLATION),
    )
    curve = km_curve(samples, keys)
    median = km_quantile(curve, keys, 0.5, "km_median_s")
    p90 = km_quantile(curve, keys, 0.9, "km_p90_s")
    return with_string_keys(counts.join(median, on=keys, how="left").join(p90, on=keys, how="left"))


def trailing_samples(runs: pl.DataFrame, cutoff: datetime) -> pl.DataFrame:
    """KM samples of `runs` (tenant, job_type, started_at, run_end, done) as known at `cutoff`.

    A run that ended after the cutoff is censored at cutoff - started_at: the baseline uses no
    knowledge from after the instant it serves.
    """
    cutoff_lit = pl.lit(cutoff, dtype=UTC_NAIVE)
    known_end = pl.min_horizontal(pl.col("run_end"), cutoff_lit)
    return runs.select(
        "tenant",
        "job_type",
        duration_s=seconds_between(pl.col("started_at"), known_end),
        event=pl.col("done") & (pl.col("run_end") <= cutoff_lit),
    ).filter(pl.col("duration_s").is_not_null())


def sorted_runs(jobs: pl.DataFrame) -> pl.DataFrame:
    """The started runs (tenant, job_type, started_at, run_end, done: completed?), sorted by started_at."""
    return pick(
        jobs,
        pl.col("started_at").is_not_null() & pl.col("run_end").is_not_null(),
        "tenant",
        "job_type",
        "started_at",
        "run_end",
        (pl.col("end_kind") == "done").alias("done"),
    ).sort("started_at")


def window_curve(runs: pl.DataFrame, cutoff: datetime, days: int) -> pl.DataFrame:
    """KM curve per (tenant, job_type) of the `sorted_runs` started in [cutoff - days, cutoff), as known at cutoff."""
    # The window is a contiguous slice of the sorted runs: no scan of the whole frame per cutoff.
    started = runs["started_at"]
    first = started.search_sorted(cutoff - timedelta(days=days), side="left")
    last = started.search_sorted(cutoff, side="left")
    window = runs.slice(first, last - first)
    return km_curve(trailing_samples(window, cutoff), ["tenant", "job_type"])


def trailing_curves(jobs: pl.DataFrame, cutoffs: Sequence[datetime], days: int) -> pl.DataFrame:
    """KM curves per (tenant, job_type, cutoff) of the runs started in [cutoff - days, cutoff)."""
    runs = sorted_runs(jobs)
    curves = [
        window_curve(runs, cutoff, days).with_columns(cutoff=pl.lit(cutoff, dtype=UTC_NAIVE))
        for cutoff in sorted(set(cutoffs))
    ]
    if not curves:
        return pl.DataFrame(
            schema={
                "tenant": jobs.schema["tenant"],
                "job_type": jobs.schema["job_type"],
                "time_s": pl.Float64,
                "at_risk": pl.Int64,
                "events": pl.Int64,
                "survival": pl.Float64,
                "cutoff": UTC_NAIVE,
            }
        )
    return pl.concat(curves)
