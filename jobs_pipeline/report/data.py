"""What one tenant's report shows, as Polars frames: archive rows in, figures from jobs_pipeline.analytics out.

Nothing here recomputes a statistic its own way: durations quantiles come from
`analytics.stats.duration_summary`, failure rates and their Wilson bands, the type mix, in-flight
concurrency and the slow-job flags from `analytics.compute.compute_statistics`, retry candidates
from `analytics.retries`. The figures are computed fresh from the archive rows the connection
sees (not read from stats_* tables, which a read-only copy may lack or hold stale), with the
same `as_of` convention as `stats_store.refresh_statistics`: the tenant's latest observation.

Only two things are the report's own: the window (the `days` before as_of, cut to the buckets that
overlap it) and the capture-coverage figures, read straight from `sync_runs` (no analytics module
covers them).

All timestamps in the frames are naive UTC (the analytics' convention), ready for plotting.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import polars as pl

from jobs_pipeline.analytics.buckets import Scope
from jobs_pipeline.analytics.compute import compute_statistics, read_window
from jobs_pipeline.analytics.conventions import ALL_TYPES, DONE, ERROR, KILLED, VENDOR_TYPICAL_MAX_S
from jobs_pipeline.analytics.prepare import naive_utc, prepare_jobs
from jobs_pipeline.analytics.retries import retry_candidates
from jobs_pipeline.analytics.schema import (
    STATS_FAILURE_RATES,
    STATS_IN_FLIGHT,
    STATS_SLOW_JOBS,
    STATS_TYPE_MIX,
)
from jobs_pipeline.analytics.stats import duration_summary
from jobs_pipeline.safe_text import UNSAFE_PATTERN, safe_text
from jobs_pipeline.stats_store import JOB_LIFE_BOUND, latest_observation, read_gaps, read_jobs, read_snapshots

# When the data of the window spans up to this many days, the time series use hourly buckets;
# beyond, daily ones (72 hourly points per type are readable; a week of hours is not).
HOURLY_UP_TO_DAYS = 3
# The duration metrics the report plots: metric -> (seconds column, timestamp that puts a job in
# the window, DONE jobs only?). Same rules as analytics.durations.DURATION_METRICS.
REPORT_METRICS: dict[str, tuple[str, str, bool]] = {
    "run_time": ("run_time_s", "completed_at", True),
    "queue_wait": ("queue_wait_s", "started_at", False),
}


@dataclass(frozen=True)
class ReportWindow:
    tenant: str
    start: datetime  # naive UTC, inclusive
    end: datetime  # naive UTC: the as_of instant
    days: int
    grain: str  # "hour" | "day": bucket size of the time series
    # Where the time axes begin: the window's start, or the first job or sync in it when the
    # archive is younger than the window (a 7-day axis with one day of data is mostly blank).
    plot_start: datetime | None = None

    @property
    def axis_start(self) -> datetime:
        return self.plot_start or self.start

    def contains(self, column: str) -> pl.Expr:
        return (pl.col(column) >= self.start) & (pl.col(column) <= self.end)


@dataclass(frozen=True)
class TenantReport:
    """Everything one tenant's section shows. Empty frames mean "nothing in the window"."""

    window: ReportWindow
    jobs: pl.DataFrame  # prepared jobs (analytics.prepare) whose life overlaps the window
    durations: pl.DataFrame  # metric, job_type ('*' = all), count, mean_s, p50_s .. p99_s, max_s
    failure_rates: pl.DataFrame  # stats_failure_rates rows of the window at window.grain
    type_mix: pl.DataFrame  # stats_type_mix rows of the window at window.grain
    in_flight: pl.DataFrame  # stats_in_flight rows of the window at window.grain
    slowest: pl.DataFrame  # the longest runs that ended in the window, with the slow-job flags
    failing: pl.DataFrame  # ERROR and KILLED jobs that ended in the window, newest first
    syncs: pl.DataFrame  # sync_runs rows observed in the window, oldest first
    gaps: pl.DataFrame  # one row per gap of those syncs

    @property
    def created(self) -> int:
        return self.jobs.filter(self.window.contains("created_at")).height

    def ended(self, status: str) -> int:
        return self.jobs.filter((pl.col("status") == status) & self.window.contains("finished_at")).height


def tenants(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """Tenants with jobs or syncs in the archive, sorted."""
    rows = conn.sql("SELECT tenant FROM jobs UNION SELECT tenant FROM sync_runs ORDER BY tenant").fetchall()
    return [row[0] for row in rows]


def load_tenant_report(
    conn: duckdb.DuckDBPyConnection,
    tenant: str,
    *,
    days: int,
    as_of: datetime | None = None,
    top_n: int = 15,
) -> TenantReport | None:
    """The tenant's report data for the `days` before `as_of` (default: its latest observation).

    None when the archive has never observed the tenant.
    """
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    if as_of is None:
        aware_as_of = latest_observation(conn, tenant)
    else:  # naive instants are UTC, like everywhere in the project
        aware_as_of = as_of.replace(tzinfo=UTC) if as_of.tzinfo is None else as_of.astimezone(UTC)
    if aware_as_of is None:
        return None
    end = naive_utc(aware_as_of)
    start = end - timedelta(days=days)
    window = ReportWindow(tenant, start, end, days, "day")

    scope = Scope.for_days(
        start.date() + timedelta(days=i) for i in range((end.date() - start.date()).days + 1)
    )
    read_start, read_end = read_window(scope)
    # Every label of the page (tables, chart titles, legends) comes from these frames: made safe
    # once here, so no control character from the API reaches the HTML, the SVGs or a warning.
    raw = displayable(read_jobs(conn, tenant, read_start, read_end, aware_as_of))
    snapshots = displayable(read_snapshots(conn, tenant, scope))
    stats = compute_statistics(raw, snapshots, scope, aware_as_of, read_gaps(conn, tenant))
    jobs = prepare_jobs(raw, aware_as_of).join(
        _error_messages(conn, tenant, read_start), on="job_id", how="left"
    )
    syncs = _syncs(conn, window)
    plot_start = _first_instant(jobs, syncs, window)
    # The grain follows the span that holds data: a 7-day report of a 1-day-old archive is hourly.
    grain = "hour" if end - plot_start <= timedelta(days=HOURLY_UP_TO_DAYS) else "day"
    window = replace(window, plot_start=plot_start, grain=grain)

    return TenantReport(
        window=window,
        jobs=jobs,
        durations=_duration_summaries(jobs, window),
        failure_rates=_series(stats[STATS_FAILURE_RATES.name], window),
        type_mix=_series(stats[STATS_TYPE_MIX.name], window),
        in_flight=_series(stats[STATS_IN_FLIGHT.name], window),
        slowest=_slowest(jobs, stats[STATS_SLOW_JOBS.name], window, top_n),
        failing=_failing(jobs, window, top_n),
        syncs=syncs,
        gaps=_gap_rows(syncs),
    )


def displayable(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` with every string value holding a control or formatting character made safe (safe_text)."""
    replaced = []
    for name, dtype in frame.schema.items():
        if dtype != pl.String:
            continue
        column = frame[name]
        unsafe = column.filter(column.str.contains(UNSAFE_PATTERN)).unique().to_list()
        if unsafe:
            replaced.append(pl.col(name).replace({value: safe_text(value) for value in unsafe}))
    return frame.with_columns(replaced) if replaced else frame


def _first_instant(jobs: pl.DataFrame, syncs: pl.DataFrame, window: ReportWindow) -> datetime:
    candidates = [
        jobs.filter(window.contains("created_at"))["created_at"].min(),
        syncs["observed_at"].min() if not syncs.is_empty() else None,
    ]
    known = [c for c in candidates if isinstance(c, datetime)]
    # A job created before the window may still run inside it: the axis never starts before the window.
    return max(window.start, min(known)) if known else window.start


# -- durations ---------------------------------------------------------------------------------


def duration_values(jobs: pl.DataFrame, window: ReportWindow, metric: str) -> pl.DataFrame:
    """job_type, seconds: the durations of `metric` the window holds (same rules as the analytics)."""
    column, time_column, done_only = REPORT_METRICS[metric]
    rows = jobs.filter(pl.col(column).is_not_null() & window.contains(time_column))
    if done_only:
        rows = rows.filter(pl.col("status") == DONE)
    return rows.select("job_type", pl.col(column).alias("seconds"))


def _duration_summaries(jobs: pl.DataFrame, window: ReportWindow) -> pl.DataFrame:
    parts = []
    for metric in REPORT_METRICS:
        values = duration_values(jobs, window, metric)
        if values.is_empty():
            continue
        summary = duration_summary("seconds")
        by_type = values.group_by("job_type").agg(summary)
        overall = values.select(summary).with_columns(job_type=pl.lit(ALL_TYPES))
        parts.append(
            pl.concat([by_type, overall], how="diagonal_relaxed").with_columns(metric=pl.lit(metric))
        )
    if not parts:
        return pl.DataFrame(schema={"metric": pl.String, "job_type": pl.String, "count": pl.UInt32})
    combined = pl.concat(parts, how="diagonal_relaxed")
    return combined.select("metric", "job_type", pl.exclude("metric", "job_type")).sort("metric", "job_type")


# -- bucketed series ---------------------------------------------------------------------------


def _series(frame: pl.DataFrame, window: ReportWindow) -> pl.DataFrame:
    """The frame's rows at the window's grain whose bucket overlaps the window, naive UTC."""
    naive = frame.with_columns(pl.col("bucket_start").dt.replace_time_zone(None))
    first_bucket = naive_utc(window.start).replace(minute=0, second=0, microsecond=0)
    if window.grain == "day":
        first_bucket = first_bucket.replace(hour=0)
    return naive.filter(
        (pl.col("bucket_grain") == window.grain)
        & (pl.col("bucket_start") >= first_bucket)
        & (pl.col("bucket_start") <= window.end)
    ).sort("bucket_start", "job_type")


# -- job tables --------------------------------------------------------------------------------


def _slowest(jobs: pl.DataFrame, slow: pl.DataFrame, window: ReportWindow, top_n: int) -> pl.DataFrame:
    """The top_n longest runs (DONE or ERROR) that ended in the window, with the analytics' flags."""
    flags = slow.select("job_id", "trailing_p99_s", "over_trailing_p99")
    vendor_max = pl.col("job_type").replace_strict(
        VENDOR_TYPICAL_MAX_S, default=None, return_dtype=pl.Float64
    )
    return (
        jobs.filter(
            pl.col("status").is_in((DONE, ERROR))
            & pl.col("run_time_s").is_not_null()
            & window.contains("completed_at")
        )
        .sort("run_time_s", "job_id", descending=[True, False])
        .head(top_n)
        .join(flags, on="job_id", how="left")
        .with_columns(vendor_max_s=vendor_max)
        .select(
            "job_id",
            "job_type",
            "target_id",
            "status",
            "started_at",
            "completed_at",
            "run_time_s",
            "queue_wait_s",
            "vendor_max_s",
            (pl.col("run_time_s") / pl.col("vendor_max_s")).alias("times_vendor_max"),
            "trailing_p99_s",
            pl.col("over_trailing_p99").fill_null(False),
        )
    )


def _failing(jobs: pl.DataFrame, window: ReportWindow, top_n: int) -> pl.DataFrame:
    """ERROR and KILLED jobs that ended in the window, newest first, with retry advice for ERRORs."""
    candidates = retry_candidates(jobs.filter(pl.col("status").is_in((DONE, ERROR)))).select(
        "job_id", "later_attempts", pl.lit(True).alias("retry_candidate")
    )
    return (
        jobs.filter(pl.col("status").is_in((ERROR, KILLED)) & window.contains("finished_at"))
        .sort("finished_at", "job_id", descending=[True, False])
        .head(top_n)
        .join(candidates, on="job_id", how="left")
        .select(
            "job_id",
            "job_type",
            "target_id",
            "status",
            "created_at",
            "finished_at",
            "run_time_s",
            "error",
            pl.col("retry_candidate").fill_null(False),
        )
    )


def _error_messages(conn: duckdb.DuckDBPyConnection, tenant: str, since: datetime) -> pl.DataFrame:
    """job_id, error of the tenant's failed jobs created since `since` (the analytics read no error text)."""
    query = f"""
        SELECT job_id, error FROM jobs
        WHERE tenant = $tenant AND status IN ('{ERROR}', '{KILLED}') AND created_at >= $since
    """
    # Made safe like the jobs frame, so the join on job_id still matches.
    return displayable(
        conn.sql(query, params={"tenant": tenant, "since": since.replace(tzinfo=UTC) - JOB_LIFE_BOUND}).pl()
    )


# -- capture coverage (sync_runs: no analytics module covers it) -------------------------------


def _syncs(conn: duckdb.DuckDBPyConnection, window: ReportWindow) -> pl.DataFrame:
    query = """
        SELECT sync_id, timezone('UTC', observed_at) AS observed_at, requests, pages, jobs_seen, jobs_new,
               jobs_changed, jobs_vanished, coverage_complete, CAST(gaps AS VARCHAR) AS gaps,
               coalesce(rate_limited, 0) AS rate_limited, coalesce(rejects, 0) AS rejects
        FROM sync_runs
        WHERE tenant = $tenant AND observed_at >= $start AND observed_at <= $end
        ORDER BY observed_at, sync_id
    """
    params = {
        "tenant": window.tenant,
        "start": window.start.replace(tzinfo=UTC),
        "end": window.end.replace(tzinfo=UTC),
    }
    return conn.sql(query, params=params).pl()


def _utc_text(value: object) -> str:
    """An ISO-8601 instant from the gaps JSON as 'YYYY-MM-DD HH:MM:SSZ' (kept as is when unparsable)."""
    if not isinstance(value, str):
        return "" if value is None else str(value)
    try:
        instant = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if instant.tzinfo is not None:
        instant = instant.astimezone(UTC)
    return instant.strftime("%Y-%m-%d %H:%M:%SZ")


def _gap_rows(syncs: pl.DataFrame) -> pl.DataFrame:
    rows: list[dict[str, Any]] = []
    for sync_id, observed_at, gaps_json in syncs.select("sync_id", "observed_at", "gaps").iter_rows():
        for gap in json.loads(gaps_json or "[]"):
            rows.append(
                {
                    "sync_id": sync_id,
                    "observed_at": observed_at,
                    "slice": str(gap.get("slice", "")),
                    "reason": str(gap.get("reason", "")),
                    "created_from": _utc_text(gap.get("created_from")),
                    "created_to": _utc_text(gap.get("created_to")),
                }
            )
    return pl.DataFrame(
        rows,
        schema={
            "sync_id": pl.String,
            "observed_at": pl.Datetime("us"),
            "slice": pl.String,
            "reason": pl.String,
            "created_from": pl.String,
            "created_to": pl.String,
        },
    )
