"""Anomaly flags: slow jobs, and failure spikes.

Slow jobs. A run (DONE or ERROR) completed on day D is flagged
- `over_trailing_p99` when its run time exceeds the p99 (linear) of the DONE run times of its type
  completed in [D - BASELINE_DAYS, D) (at least MIN_BASELINE_RUNS of them, else no verdict);
- `over_vendor_max` when it exceeds the vendor's typical maximum for its type.
Both flags are kept: the first finds regressions against our own history, the second runs that
are long by the vendor's own standard even when the whole week was slow.

Failure spikes. Per bucket and type, a one-sided binomial score test of the bucket's errors k out
of n finished (DONE + ERROR) against the trailing rate p0 of the BASELINE_DAYS before the bucket
(smoothed (e + 0.5) / (f + 1)):  z = (k - 0.5 - n p0) / sqrt(n p0 (1 - p0)),  p = P(Z >= z).
is_spike when z >= SPIKE_Z (alpha 0.001), k >= SPIKE_MIN_ERRORS and the baseline holds at least
SPIKE_MIN_BASELINE_FINISHED finished jobs (else z is null: no baseline, no verdict).
Coverage (see coverage.py): hours with a status-selective gap are left out of every baseline, and
a bucket with one gets no verdict either (z null, never a spike): its rate is biased by what the
archive could not see, not by the vendor.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from jobs_pipeline.analytics.buckets import BUCKET_KEYS, Scope, aggregate_additive, truncate
from jobs_pipeline.analytics.conventions import (
    ALL_TYPES,
    BASELINE_DAYS,
    DONE,
    ERROR,
    MIN_BASELINE_RUNS,
    QUANTILE_INTERPOLATION,
    SPIKE_MIN_BASELINE_FINISHED,
    SPIKE_MIN_ERRORS,
    SPIKE_Z,
    VENDOR_TYPICAL_MAX_S,
)
from jobs_pipeline.analytics.coverage import STATUS_SELECTIVE, empty_coverage, with_coverage
from jobs_pipeline.analytics.prepare import UTC_NAIVE, pick, with_string_keys
from jobs_pipeline.analytics.stats import normal_upper_tail, ratio


def slow_jobs(jobs: pl.DataFrame, scope: Scope) -> pl.DataFrame:
    """stats_slow_jobs rows: runs completed on the scope's days that trip at least one flag."""
    done_runs = pick(
        jobs,
        (pl.col("status") == DONE) & pl.col("run_time_s").is_not_null(),
        "tenant",
        "job_type",
        "completed_at",
        "run_time_s",
    )
    candidates = pick(
        jobs,
        pl.col("status").is_in((DONE, ERROR)) & pl.col("run_time_s").is_not_null(),
        "tenant",
        "job_id",
        "job_type",
        "status",
        "started_at",
        "completed_at",
        "run_time_s",
    )
    vendor_max = pl.col("job_type").replace_strict(
        VENDOR_TYPICAL_MAX_S, default=None, return_dtype=pl.Float64
    )
    flagged = []
    for start in scope.day_starts:
        end = start + timedelta(days=1)
        baseline = (
            done_runs.filter(
                (pl.col("completed_at") >= start - timedelta(days=BASELINE_DAYS))
                & (pl.col("completed_at") < start)
            )
            .group_by("tenant", "job_type")
            .agg(
                trailing_runs=pl.len().cast(pl.Int64),
                trailing_p99_s=pl.col("run_time_s").quantile(0.99, interpolation=QUANTILE_INTERPOLATION),
            )
            .with_columns(
                trailing_p99_s=pl.when(pl.col("trailing_runs") >= MIN_BASELINE_RUNS).then(
                    pl.col("trailing_p99_s")
                )
            )
        )
        day_runs = candidates.filter((pl.col("completed_at") >= start) & (pl.col("completed_at") < end))
        judged = day_runs.join(baseline, on=["tenant", "job_type"], how="left").with_columns(
            completed_day=pl.lit(start.date(), dtype=pl.Date),
            trailing_runs=pl.col("trailing_runs").fill_null(0),
            vendor_max_s=vendor_max,
        )
        flagged.append(
            judged.with_columns(
                over_trailing_p99=pl.col("run_time_s") > pl.col("trailing_p99_s"),
                over_vendor_max=pl.col("run_time_s") > pl.col("vendor_max_s"),
            ).filter(
                pl.col("over_trailing_p99").fill_null(False) | pl.col("over_vendor_max").fill_null(False)
            )
        )
    return (
        pl.concat(flagged, how="diagonal_relaxed")
        .select(
            "tenant",
            "completed_day",
            "job_id",
            "job_type",
            "status",
            "started_at",
            "completed_at",
            "run_time_s",
            "trailing_p99_s",
            "trailing_runs",
            "vendor_max_s",
            "over_trailing_p99",
            "over_vendor_max",
        )
        .sort("tenant", "completed_day", "job_id")
    )


def failure_spikes(
    jobs: pl.DataFrame,
    scope: Scope,
    coverage: pl.DataFrame | None = None,
    excluded_hours: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """stats_failure_spikes rows: per (bucket, tenant, job_type) with at least one finished job.

    coverage: stats_coverage rows of the scope (none: every bucket complete); excluded_hours:
    (tenant, hour) left out of the baselines (coverage.selective_hours).
    """
    finished = pick(
        jobs,
        pl.col("status").is_in((DONE, ERROR)) & pl.col("finished_at").is_not_null(),
        "tenant",
        "job_type",
        "finished_at",
        (pl.col("status") == ERROR).alias("is_error"),
    )
    counts = aggregate_additive(
        finished,
        "finished_at",
        scope,
        [
            pl.col("is_error").sum().cast(pl.Int64).alias("errors"),
            pl.len().cast(pl.Int64).alias("finished"),
        ],
    )
    baseline_rows = finished
    if excluded_hours is not None and not excluded_hours.is_empty():
        baseline_rows = (
            finished.with_columns(hour=truncate(pl.col("finished_at"), "hour"))
            .join(
                excluded_hours.with_columns(pl.col("tenant").cast(finished.schema["tenant"])),
                on=["tenant", "hour"],
                how="anti",
            )
            .drop("hour")
        )
    baseline = with_coverage(_trailing_counts(baseline_rows, counts, scope), _coverage_or_empty(coverage))
    judged = pl.col("coverage") != STATUS_SELECTIVE
    k, n = pl.col("errors").cast(pl.Float64), pl.col("finished").cast(pl.Float64)
    p0 = (pl.col("baseline_errors") + 0.5) / (pl.col("baseline_finished") + 1.0)
    has_baseline = pl.col("baseline_finished") >= SPIKE_MIN_BASELINE_FINISHED
    z = pl.when(has_baseline & judged).then((k - 0.5 - n * p0) / (n * p0 * (1.0 - p0)).sqrt())
    return (
        baseline.with_columns(
            error_rate=ratio(pl.col("errors"), pl.col("finished")),
            baseline_rate=ratio(pl.col("baseline_errors"), pl.col("baseline_finished")),
            z_score=z,
        )
        .with_columns(p_value=normal_upper_tail(pl.col("z_score")))
        .with_columns(
            is_spike=((pl.col("z_score") >= SPIKE_Z) & (pl.col("errors") >= SPIKE_MIN_ERRORS)).fill_null(
                False
            )
        )
        .select(
            *BUCKET_KEYS,
            "errors",
            "finished",
            "error_rate",
            "baseline_errors",
            "baseline_finished",
            "baseline_rate",
            "z_score",
            "p_value",
            "is_spike",
            "coverage",
        )
        .sort(BUCKET_KEYS)
    )


def _trailing_counts(finished: pl.DataFrame, counts: pl.DataFrame, scope: Scope) -> pl.DataFrame:
    """Add baseline_errors / baseline_finished: the key's counts in [bucket_start - N days, bucket_start).

    Hourly cumulative sums (every bucket edge is an hour edge) read at both ends of the window.
    """
    window_start = scope.start - timedelta(days=BASELINE_DAYS)
    hourly = finished.filter(
        (pl.col("finished_at") >= window_start) & (pl.col("finished_at") < scope.end)
    ).with_columns(hour=truncate(pl.col("finished_at"), "hour"))
    sums = [pl.col("is_error").sum().cast(pl.Int64).alias("e"), pl.len().cast(pl.Int64).alias("f")]
    per_hour = pl.concat(
        [
            with_string_keys(hourly.group_by("tenant", "job_type", "hour").agg(sums)),
            with_string_keys(hourly.group_by("tenant", "hour").agg(sums)).with_columns(
                job_type=pl.lit(ALL_TYPES)
            ),
        ],
        how="diagonal_relaxed",
    ).sort("tenant", "job_type", "hour")
    cumulative = per_hour.with_columns(
        cum_e=pl.col("e").cum_sum().over("tenant", "job_type"),
        cum_f=pl.col("f").cum_sum().over("tenant", "job_type"),
    ).select("tenant", "job_type", "hour", "cum_e", "cum_f")

    def before(frame: pl.DataFrame, at: str, suffix: str) -> pl.DataFrame:
        # Cumulative counts of the hours strictly before `at` (0 when there are none).
        joined = frame.sort(at).join_asof(
            cumulative.rename({"hour": f"_hour{suffix}", "cum_e": f"_e{suffix}", "cum_f": f"_f{suffix}"}),
            left_on=at,
            right_on=f"_hour{suffix}",
            by=["tenant", "job_type"],
            strategy="backward",
            allow_exact_matches=False,
            check_sortedness=False,
        )
        return joined.with_columns(pl.col(f"_e{suffix}", f"_f{suffix}").fill_null(0)).drop(f"_hour{suffix}")

    framed = counts.with_columns(
        _window_start=pl.col("bucket_start") - pl.duration(days=BASELINE_DAYS),
    ).with_columns(pl.col("_window_start").cast(UTC_NAIVE))
    at_end = before(framed, "bucket_start", "_end")
    both = before(at_end, "_window_start", "_start")
    return both.with_columns(
        baseline_errors=pl.col("_e_end") - pl.col("_e_start"),
        baseline_finished=pl.col("_f_end") - pl.col("_f_start"),
    ).drop("_window_start", "_e_end", "_f_end", "_e_start", "_f_start")


def _coverage_or_empty(coverage: pl.DataFrame | None) -> pl.DataFrame:
    return empty_coverage() if coverage is None else coverage
