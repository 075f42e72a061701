"""The statistics tables: names, columns, SQL types and the documentation written as COMMENTs.

Pure data (no I/O): stats_store turns it into DDL and COMMENT ON statements, and `conform` makes
every computed frame match its table exactly (column order and types) before it is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import polars as pl

from jobs_pipeline.analytics.conventions import (
    BASELINE_DAYS,
    ETA_FULL_TRUST_PROGRESS,
    ETA_MIN_PROGRESS,
    MIN_BASELINE_RUNS,
    SPIKE_MIN_BASELINE_FINISHED,
    SPIKE_MIN_ERRORS,
    SPIKE_Z,
)


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str
    comment: str


@dataclass(frozen=True)
class TableSpec:
    """One statistics table. `replaced_by` says which rows a refresh owns and rewrites:
    bucket = (tenant, bucket_grain, bucket_start) of the scope; day = (tenant, completed_day) of the
    scope's days; tenant = all rows of the tenant (a current-state table)."""

    name: str
    comment: str
    columns: tuple[Column, ...]
    replaced_by: Literal["bucket", "day", "tenant"]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


QUANTILE_NOTE = "linear interpolation (DuckDB quantile_cont, Polars interpolation='linear')"

BUCKET_COLUMNS: tuple[Column, ...] = (
    Column("bucket_grain", "VARCHAR", "Bucket size: 'hour', 'day' or 'week' (ISO week, Monday 00:00 UTC)."),
    Column(
        "bucket_start",
        "TIMESTAMPTZ",
        "Start of the bucket, UTC (inclusive); it ends one grain later (exclusive).",
    ),
    Column("tenant", "VARCHAR", "Tenant (API account) the jobs belong to."),
    Column("job_type", "VARCHAR", "Job type (EXTRACTION, EMBEDDING, ...); '*' = all types together."),
)


def _seconds(name: str, what: str) -> Column:
    return Column(name, "DOUBLE", f"{what}, in seconds.")


def _count(name: str, what: str) -> Column:
    return Column(name, "BIGINT", what)


def _rate(name: str, what: str) -> Column:
    return Column(name, "DOUBLE", what)


STATS_DURATIONS = TableSpec(
    "stats_durations",
    "Duration distributions per bucket, job type and metric. run_time = completed_at - started_at and "
    "end_to_end = completed_at - created_at of DONE jobs, bucketed by completed_at; queue_wait = "
    "started_at - created_at of every started job, bucketed by started_at. Failed and killed runs are "
    f"excluded here (see stats_failure_rates, stats_survival). Quantiles: {QUANTILE_NOTE}.",
    (
        *BUCKET_COLUMNS,
        Column("metric", "VARCHAR", "'run_time', 'queue_wait' or 'end_to_end'."),
        _count("count", "Number of durations in the bucket."),
        _seconds("mean_s", "Mean duration"),
        _seconds("p50_s", "Median duration (linear interpolation)"),
        _seconds("p90_s", "90th percentile (linear interpolation)"),
        _seconds("p95_s", "95th percentile (linear interpolation)"),
        _seconds("p99_s", "99th percentile (linear interpolation)"),
        _seconds("max_s", "Longest duration"),
    ),
    "bucket",
)

STATS_FAILURE_RATES = TableSpec(
    "stats_failure_rates",
    "Failure and kill rates per bucket and job type, with Wilson 95 % score intervals. A job counts in "
    "the bucket of its end: completed_at (updated_at if absent) for DONE/ERROR, vanished_at for KILLED.",
    (
        *BUCKET_COLUMNS,
        _count("done", "Jobs that ended DONE in the bucket."),
        _count("error", "Jobs that ended ERROR in the bucket."),
        _count(
            "killed", "Jobs inferred KILLED (vanished from the API while younger than 24 h) in the bucket."
        ),
        _rate("failure_rate", "error / (done + error); NULL when no job finished."),
        _rate("failure_rate_lower", "Wilson 95 % lower bound of failure_rate."),
        _rate("failure_rate_upper", "Wilson 95 % upper bound of failure_rate."),
        _rate("killed_rate", "killed / (done + error + killed)."),
        _rate("killed_rate_lower", "Wilson 95 % lower bound of killed_rate."),
        _rate("killed_rate_upper", "Wilson 95 % upper bound of killed_rate."),
        Column(
            "coverage",
            "VARCHAR",
            "What the archive saw of the bucket (stats_coverage): 'complete', 'partial' (jobs of every status "
            "missed) or 'status_selective' (one status slice missed: figures biased; left out of trends, "
            "baselines and spike verdicts).",
        ),
    ),
    "bucket",
)

STATS_TYPE_MIX = TableSpec(
    "stats_type_mix",
    "Job-type mix of the jobs submitted (created_at) in each bucket: counts, shares, and their run-time "
    "cost (known run time: to completion, to the kill, or so far for running jobs). The '*' row holds totals.",
    (
        *BUCKET_COLUMNS,
        _count("jobs", "Jobs of this type created in the bucket."),
        _rate("jobs_share", "jobs / all jobs created in the bucket (1 on the '*' row)."),
        _seconds("run_time_s", "Known run time (cost) of those jobs"),
        _rate("run_time_share", "run_time_s / the bucket's total run time (NULL if the total is 0)."),
        Column(
            "coverage",
            "VARCHAR",
            "What the archive saw of the bucket (stats_coverage): 'complete', 'partial' (jobs of every status "
            "missed) or 'status_selective' (one status slice missed: figures biased; left out of trends, "
            "baselines and spike verdicts).",
        ),
    ),
    "bucket",
)

STATS_IN_FLIGHT = TableSpec(
    "stats_in_flight",
    "Concurrency of running jobs per bucket from the [started_at, end) intervals, where end is the "
    "completion, the kill (vanished_at), or as_of for jobs still running. Exact event sweep; buckets are "
    "observed up to as_of. Only buckets in which something ran appear (absent = 0).",
    (
        *BUCKET_COLUMNS,
        _seconds(
            "observed_s", "Observed length of the bucket (shorter than the grain for the current bucket)"
        ),
        _seconds("busy_s", "Integral of the concurrency over the bucket (job-seconds)"),
        _rate("mean_in_flight", "Time-averaged number of running jobs: busy_s / observed_s."),
        _count("max_in_flight", "Peak number of jobs running at the same instant in the bucket."),
        _count("in_flight_at_start", "Jobs running at bucket_start."),
    ),
    "bucket",
)

STATS_THROUGHPUT = TableSpec(
    "stats_throughput",
    "Arrivals, starts and completions per bucket, with Little's law (L = lambda * W) for the running "
    "jobs: L = mean_in_flight, lambda = starts / observed_s, W = mean known run time of the jobs started "
    "in the bucket. little_ratio = L / (lambda * W) is about 1 over long windows; per bucket it drifts by "
    "the runs straddling the bucket's edges.",
    (
        *BUCKET_COLUMNS,
        _count("arrivals", "Jobs created in the bucket."),
        _count("starts", "Jobs started in the bucket."),
        _count("completions", "Jobs that finished (DONE + ERROR) in the bucket."),
        _count("done", "Jobs that ended DONE in the bucket."),
        _count("error", "Jobs that ended ERROR in the bucket."),
        _count("killed", "Jobs inferred KILLED in the bucket (by vanished_at)."),
        _seconds("observed_s", "Observed length of the bucket (up to as_of)"),
        _rate("completions_per_hour", "completions per hour of observed time."),
        _rate(
            "mean_in_flight",
            "Little's L: time-averaged running jobs (stats_in_flight.mean_in_flight, 0 if none).",
        ),
        _rate("start_rate_per_s", "Little's lambda: starts per second of observed time."),
        _seconds(
            "mean_time_in_system_s", "Little's W: mean known run time of the jobs started in the bucket"
        ),
        _rate("little_lambda_w", "lambda * W."),
        _rate("little_ratio", "L / (lambda * W); NULL when lambda * W is 0 or unknown."),
    ),
    "bucket",
)

STATS_SURVIVAL = TableSpec(
    "stats_survival",
    "Kaplan-Meier survival of run time for the runs started in each bucket. Event = DONE; censored: "
    "still running (at as_of), KILLED (at vanished_at), ERROR (at its failure), lost from the API's view "
    "(at last_seen_at). Censoring never shortens durations: an incident can only push the KM quantiles up. "
    "KM quantile p = smallest event time with S(t) <= 1 - p.",
    (
        *BUCKET_COLUMNS,
        _count("jobs", "Runs started in the bucket."),
        _count("events", "Runs that completed (DONE)."),
        _count("censored", "Runs not (yet) completed: censored."),
        _count("censored_running", "Censored because still running at as_of."),
        _count("censored_killed", "Censored because KILLED."),
        _count("censored_error", "Censored because they failed (ERROR)."),
        _count("censored_lost", "Censored at their last sighting: active jobs the API no longer shows."),
        _seconds("km_median_s", "Kaplan-Meier median run time (NULL if S never reaches 0.5)"),
        _seconds("km_p90_s", "Kaplan-Meier 90th percentile run time (NULL if S never reaches 0.1)"),
        _seconds(
            "completed_p50_s", f"Naive median over completed runs only, for comparison ({QUANTILE_NOTE})"
        ),
        _seconds("completed_p90_s", "Naive 90th percentile over completed runs only, for comparison"),
    ),
    "bucket",
)

STATS_SPEED = TableSpec(
    "stats_speed",
    "Size-normalised speed of DONE runs per completion bucket: seconds per page (EXTRACTION, "
    "metadata.pageCount) and per chunk (EMBEDDING, metadata.totalChunks). Jobs without a positive size "
    "are left out. No '*' row: the units differ.",
    (
        *BUCKET_COLUMNS,
        Column("unit", "VARCHAR", "'page' or 'chunk'."),
        _count("jobs", "DONE runs with a known size."),
        _rate("units", "Total size of those runs (pages or chunks)."),
        _seconds("run_time_s", "Total run time of those runs"),
        _rate("s_per_unit", "Pooled seconds per unit: run_time_s / units."),
        _rate("p50_s_per_unit", "Median of the per-run seconds per unit (linear interpolation)."),
        _rate("p90_s_per_unit", "90th percentile of the per-run seconds per unit (linear interpolation)."),
    ),
    "bucket",
)

STATS_FAILURE_SPIKES = TableSpec(
    "stats_failure_spikes",
    "One-sided binomial score test per bucket and type: are the bucket's errors above the trailing "
    f"{BASELINE_DAYS}-day error rate? z = (k - 0.5 - n*p0) / sqrt(n*p0*(1-p0)) with p0 = (e + 0.5) / (f + 1) "
    f"from the baseline window [bucket_start - {BASELINE_DAYS} days, bucket_start). Spike when z >= {SPIKE_Z:.3f} "
    f"(one-sided alpha 0.001), k >= {SPIKE_MIN_ERRORS} and the baseline has >= {SPIKE_MIN_BASELINE_FINISHED} "
    "finished jobs.",
    (
        *BUCKET_COLUMNS,
        _count("errors", "k: jobs that ended ERROR in the bucket."),
        _count("finished", "n: jobs that ended DONE or ERROR in the bucket."),
        _rate("error_rate", "errors / finished."),
        _count("baseline_errors", "e: ERROR jobs in the baseline window."),
        _count("baseline_finished", "f: DONE + ERROR jobs in the baseline window."),
        _rate("baseline_rate", "e / f (unsmoothed; NULL when f = 0)."),
        _rate("z_score", "Score statistic; NULL when the baseline is too small to judge."),
        _rate("p_value", "One-sided p-value P(Z >= z_score), normal approximation."),
        Column(
            "is_spike", "BOOLEAN", "TRUE when the bucket's error count is a spike (see the table comment)."
        ),
        Column(
            "coverage",
            "VARCHAR",
            "What the archive saw of the bucket (stats_coverage): 'complete', 'partial' (jobs of every status "
            "missed) or 'status_selective' (one status slice missed: figures biased; left out of trends, "
            "baselines and spike verdicts).",
        ),
    ),
    "bucket",
)

STATS_COVERAGE = TableSpec(
    "stats_coverage",
    "How much of each bucket's createdAt window the archive provably saw, per tenant (job_type '*'), from "
    "the gaps the syncs recorded (sync_runs.gaps): DONE/ERROR cap gaps are never revisited (permanent), "
    "other gaps count while the tenant's latest sync still records them. A status-selective gap (one "
    "status slice missed, the others read whole) biases every rate, mix and duration of the bucket.",
    (
        *BUCKET_COLUMNS,
        _seconds("window_s", "Length of the bucket"),
        _seconds("unseen_s", "Part of the bucket's createdAt window some slice could not see"),
        _seconds("status_selective_unseen_s", "Part of the window one status slice could not see"),
        _rate("seen_share", "1 - unseen_s / window_s: the share of the window every slice saw."),
        Column(
            "coverage",
            "VARCHAR",
            "'complete' (nothing unseen), 'partial' (jobs of every status missed: counts low, rates "
            "unbiased) or 'status_selective' (figures biased: left out of trends, baselines and spikes).",
        ),
        Column("gap_slices", "VARCHAR", "The unseen slices and why, e.g. 'DONE cap'; NULL when complete."),
    ),
    "bucket",
)

STATS_ETA_BACKTEST = TableSpec(
    "stats_eta_backtest",
    "Backtest of the running-job ETA on DONE jobs, per completion bucket: every IN_PROGRESS snapshot "
    "(started_at <= observed_at < completed_at) predicts the remaining time from its progress and the "
    f"type's trailing {BASELINE_DAYS}-day Kaplan-Meier curve known at the start of the completion day, "
    "and is compared with completed_at - observed_at.",
    (
        *BUCKET_COLUMNS,
        _count("jobs", "DONE jobs with at least one usable snapshot."),
        _count("observations", "IN_PROGRESS snapshots replayed."),
        _count("predictions", "Snapshots for which an estimate existed."),
        _seconds("mae_s", "Mean absolute error of the blended estimate"),
        _rate("median_ape", "Median absolute percentage error |predicted - actual| / actual (0.25 = 25 %)."),
        _rate("p90_ape", "90th percentile of the absolute percentage error."),
        _seconds("mae_progress_only_s", "MAE of the progress-only estimate, where it exists"),
        _seconds("mae_history_only_s", "MAE of the history-only estimate, where it exists"),
    ),
    "bucket",
)

STATS_SLOW_JOBS = TableSpec(
    "stats_slow_jobs",
    f"Runs (DONE or ERROR) slower than the trailing p99 of their type over the {BASELINE_DAYS} days before "
    f"their completion day (needs >= {MIN_BASELINE_RUNS} DONE runs), and/or slower than the vendor's typical "
    "maximum for the type (EXTRACTION 5 min, EMBEDDING 10, SYNC 30, IMPORT 15, TRANSCRIPTION 5, GENERATION 2).",
    (
        Column("tenant", "VARCHAR", "Tenant (API account)."),
        Column("completed_day", "DATE", "UTC day of completed_at: the refresh unit of this table."),
        Column("job_id", "VARCHAR", "The job."),
        Column("job_type", "VARCHAR", "Its type."),
        Column("status", "VARCHAR", "DONE or ERROR."),
        Column("started_at", "TIMESTAMPTZ", "Start of the run, UTC."),
        Column("completed_at", "TIMESTAMPTZ", "End of the run, UTC."),
        _seconds("run_time_s", "completed_at - started_at"),
        _seconds(
            "trailing_p99_s",
            "p99 (linear) of the type's DONE run times in the baseline window; NULL if too few",
        ),
        _count("trailing_runs", "DONE runs of the type in the baseline window."),
        _seconds("vendor_max_s", "The vendor's typical maximum for the type; NULL for unknown types"),
        Column("over_trailing_p99", "BOOLEAN", "run_time_s > trailing_p99_s (NULL: no baseline)."),
        Column("over_vendor_max", "BOOLEAN", "run_time_s > vendor_max_s (NULL: unknown type)."),
    ),
    "day",
)

STATS_RUNNING_ETA = TableSpec(
    "stats_running_eta",
    "Remaining-time estimate of every job running at as_of (replaced whole at each refresh). Progress "
    f"estimate elapsed * (100 - p) / p, trusted from {ETA_MIN_PROGRESS} % and fully from "
    f"{ETA_FULL_TRUST_PROGRESS} %, blended with the type's median remaining life given the elapsed time "
    f"from a Kaplan-Meier curve of the runs started in the {BASELINE_DAYS} days before as_of.",
    (
        Column("tenant", "VARCHAR", "Tenant (API account)."),
        Column(
            "as_of",
            "TIMESTAMPTZ",
            "Instant the estimate is for (the archive's latest observation by default).",
        ),
        Column("job_id", "VARCHAR", "The running job."),
        Column("job_type", "VARCHAR", "Its type."),
        Column("started_at", "TIMESTAMPTZ", "When it started, UTC."),
        _seconds("elapsed_s", "as_of - started_at"),
        Column("progress", "INTEGER", "Last known progress, percent (NULL if the API gave none)."),
        _seconds("progress_remaining_s", "Progress-only estimate (NULL below the minimum progress)"),
        _seconds("history_remaining_s", "History-only estimate (NULL without a curve, or beyond it)"),
        _rate("progress_weight", "Weight of the progress estimate in the blend, 0..1."),
        _seconds("remaining_s", "Blended remaining-time estimate"),
        Column("eta_at", "TIMESTAMPTZ", "as_of + remaining_s: the expected completion, UTC."),
        _seconds("vendor_max_s", "The vendor's typical maximum for the type"),
        Column("over_vendor_max", "BOOLEAN", "Already running longer than the vendor's typical maximum."),
    ),
    "tenant",
)

TABLES: tuple[TableSpec, ...] = (
    STATS_DURATIONS,
    STATS_FAILURE_RATES,
    STATS_TYPE_MIX,
    STATS_IN_FLIGHT,
    STATS_THROUGHPUT,
    STATS_SURVIVAL,
    STATS_SPEED,
    STATS_FAILURE_SPIKES,
    STATS_ETA_BACKTEST,
    STATS_SLOW_JOBS,
    STATS_RUNNING_ETA,
    STATS_COVERAGE,
)
TABLES_BY_NAME: dict[str, TableSpec] = {t.name: t for t in TABLES}

_POLARS_TYPES: dict[str, pl.DataType] = {
    "VARCHAR": pl.String(),
    "TIMESTAMPTZ": pl.Datetime("us", "UTC"),
    "DATE": pl.Date(),
    "BIGINT": pl.Int64(),
    "INTEGER": pl.Int32(),
    "DOUBLE": pl.Float64(),
    "BOOLEAN": pl.Boolean(),
}


def polars_schema(spec: TableSpec) -> dict[str, pl.DataType]:
    return {c.name: _POLARS_TYPES[c.sql_type] for c in spec.columns}


def conform(frame: pl.DataFrame, spec: TableSpec) -> pl.DataFrame:
    """The frame with exactly the table's columns, in order, with the table's types.

    Naive timestamps are UTC by convention (see prepare.py) and are marked as such here.
    Raises if a column is missing: a silent NULL column would hide a bug.
    """
    missing = [name for name in spec.column_names if name not in frame.columns]
    if missing:
        raise ValueError(f"{spec.name}: computed frame lacks {missing}")
    exprs = []
    for name, dtype in polars_schema(spec).items():
        expr = pl.col(name)
        current = frame.schema[name]
        if isinstance(dtype, pl.Datetime) and isinstance(current, pl.Datetime) and current.time_zone is None:
            expr = expr.dt.replace_time_zone("UTC")
        exprs.append(expr.cast(dtype).alias(name))
    return frame.select(exprs)
