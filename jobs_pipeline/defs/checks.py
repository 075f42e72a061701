"""Asset checks on the archive tables. All of them READ the published copy (never the writer lock).

On `jobs`, run after every capture (same run):
- no_duplicate_job_ids (ERROR): a job id twice in a tenant, twice in one sync's snapshots, or under two
  tenants (two tenant entries configured with the same account's key would mix their data);
- timestamps_ordered (WARN): created_at <= started_at <= completed_at where present. The archive keeps
  the API's stamps as sent; the statistics treat a negative duration as unknown, so this is a source
  data warning, not a broken archive;
- progress_in_range (ERROR): progress within 0-100 (out-of-range records are rejected at parse time,
  so a violation is our bug);
- no_stuck_jobs (WARN): a job still running longer than STUCK_FACTOR x its type's trailing p99.
On `sync_runs`, also on its own schedule (a capture that keeps failing runs no downstream check):
- sync_runs_fresh (ERROR): every configured tenant's last applied sync is within 2 x the poll interval.
The coverage check lives on `capture` (capture.py); the failure-spike check on the statistics.
"""

from collections.abc import Iterable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import duckdb
import polars as pl

from jobs_pipeline.analytics.conventions import BASELINE_DAYS, DONE, MIN_BASELINE_RUNS
from jobs_pipeline.analytics.prepare import naive_utc, prepare_jobs
from jobs_pipeline.analytics.stats import quantile
from jobs_pipeline.defs.resources import DevanaApiResource, JobsArchiveResource
from jobs_pipeline.stats_store import latest_observation, read_jobs

# "Far past its type's p99": twice the p99 of the type's DONE runs of the trailing BASELINE_DAYS.
STUCK_FACTOR = 2.0
# How many offending rows a check shows in its metadata.
SAMPLE_ROWS = 10
# A tenant is fresh when its last applied sync is at most this many poll intervals old.
FRESHNESS_INTERVALS = 2.0

DUPLICATES_SQL = {
    "within_tenant": "SELECT tenant, job_id, count(*) AS n FROM jobs GROUP BY ALL HAVING count(*) > 1",
    "within_one_sync": (
        "SELECT tenant, job_id, count(*) AS n FROM job_snapshots WHERE source IS DISTINCT FROM 'webhook' "
        "GROUP BY tenant, sync_id, job_id HAVING count(*) > 1"
    ),
    "across_tenants": (
        "SELECT string_agg(DISTINCT tenant, ',') AS tenant, job_id, count(DISTINCT tenant) AS n "
        "FROM jobs GROUP BY job_id HAVING count(DISTINCT tenant) > 1"
    ),
}
DISORDERED_SQL = """
    SELECT tenant, job_id, status, created_at, started_at, completed_at FROM jobs
    WHERE started_at < created_at OR completed_at < started_at OR completed_at < created_at
    ORDER BY tenant, created_at
"""
PROGRESS_SQL = """
    SELECT 'jobs' AS source, tenant, job_id, progress FROM jobs WHERE progress NOT BETWEEN 0 AND 100
    UNION ALL
    SELECT 'job_snapshots', tenant, job_id, progress FROM job_snapshots WHERE progress NOT BETWEEN 0 AND 100
"""


def markdown_rows(columns: list[str], rows: Iterable[tuple[Any, ...]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _sample(conn: duckdb.DuckDBPyConnection, sql: str) -> tuple[int, str]:
    relation = conn.sql(sql)
    rows = relation.fetchall()
    return len(rows), markdown_rows(relation.columns, rows[:SAMPLE_ROWS])


def duplicates_result(conn: duckdb.DuckDBPyConnection) -> dg.AssetCheckResult:
    counts: dict[str, int] = {}
    samples: dict[str, dg.MetadataValue] = {}
    for kind, sql in DUPLICATES_SQL.items():
        counts[kind], table = _sample(conn, sql)
        if counts[kind]:
            samples[f"sample_{kind}"] = dg.MetadataValue.md(table)
    return dg.AssetCheckResult(
        check_name="no_duplicate_job_ids",
        passed=not any(counts.values()),
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={**{f"duplicates_{k}": v for k, v in counts.items()}, **samples},
    )


def ordered_result(conn: duckdb.DuckDBPyConnection) -> dg.AssetCheckResult:
    count, table = _sample(conn, DISORDERED_SQL)
    return dg.AssetCheckResult(
        check_name="timestamps_ordered",
        passed=count == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"disordered_jobs": count, **({"sample": dg.MetadataValue.md(table)} if count else {})},
    )


def progress_result(conn: duckdb.DuckDBPyConnection) -> dg.AssetCheckResult:
    count, table = _sample(conn, PROGRESS_SQL)
    return dg.AssetCheckResult(
        check_name="progress_in_range",
        passed=count == 0,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"out_of_range_rows": count, **({"sample": dg.MetadataValue.md(table)} if count else {})},
    )


def stuck_jobs(conn: duckdb.DuckDBPyConnection, tenant: str) -> pl.DataFrame:
    """The tenant's running jobs (analytics' definition: observable, IN_PROGRESS, started) whose elapsed
    time, as of the tenant's last observation, exceeds STUCK_FACTOR x the type's trailing p99 run time
    (DONE runs completed in the BASELINE_DAYS before; at least MIN_BASELINE_RUNS of them, else no verdict).
    """
    as_of = latest_observation(conn, tenant)
    if as_of is None:
        return pl.DataFrame()
    window_start = as_of - timedelta(days=BASELINE_DAYS)
    jobs = prepare_jobs(read_jobs(conn, tenant, window_start, as_of + timedelta(seconds=1), as_of), as_of)
    baseline = (
        jobs.filter(
            (pl.col("status") == DONE)
            & pl.col("run_time_s").is_not_null()
            & pl.col("completed_at").is_between(naive_utc(window_start), naive_utc(as_of), closed="left")
        )
        .group_by("job_type")
        .agg(baseline_runs=pl.len(), p99_s=quantile("run_time_s", 0.99))
        .filter(pl.col("baseline_runs") >= MIN_BASELINE_RUNS)
    )
    return (
        jobs.filter(pl.col("is_running"))
        .join(baseline, on="job_type")
        .filter(pl.col("elapsed_s") > STUCK_FACTOR * pl.col("p99_s"))
        .select(
            "tenant", "job_id", "job_type", "started_at", "progress", "elapsed_s", "p99_s", "baseline_runs"
        )
        .sort("elapsed_s", descending=True)
    )


def stuck_result(conn: duckdb.DuckDBPyConnection) -> dg.AssetCheckResult:
    tenants = [row[0] for row in conn.sql("SELECT DISTINCT tenant FROM jobs ORDER BY tenant").fetchall()]
    frames = [frame for frame in (stuck_jobs(conn, t) for t in tenants) if not frame.is_empty()]
    stuck = pl.concat(frames) if frames else pl.DataFrame()
    metadata: dict[str, Any] = {"stuck_jobs": stuck.height, "threshold": f"{STUCK_FACTOR:g} x trailing p99"}
    if stuck.height:
        shown = stuck.head(SAMPLE_ROWS).with_columns(pl.col("elapsed_s", "p99_s").round(1))
        metadata["sample"] = dg.MetadataValue.md(markdown_rows(shown.columns, shown.rows()))
    return dg.AssetCheckResult(
        check_name="no_stuck_jobs",
        passed=stuck.height == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata=metadata,
    )


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(
            "no_duplicate_job_ids",
            asset="jobs",
            description="No job id twice within a tenant, within one sync's snapshots, or under two tenants.",
        ),
        dg.AssetCheckSpec(
            "timestamps_ordered",
            asset="jobs",
            description="created_at <= started_at <= completed_at wherever present (WARN: source clock skew).",
        ),
        dg.AssetCheckSpec(
            "progress_in_range", asset="jobs", description="progress within 0-100 in jobs and job_snapshots."
        ),
        dg.AssetCheckSpec(
            "no_stuck_jobs",
            asset="jobs",
            description=f"No job still running after {STUCK_FACTOR:g} x its type's trailing 7-day p99 run time.",
        ),
    ],
)
def jobs_integrity(archive: JobsArchiveResource) -> Iterator[dg.AssetCheckResult]:
    with closing(archive.open_for_reading()) as conn:
        yield duplicates_result(conn)
        yield ordered_result(conn)
        yield progress_result(conn)
        yield stuck_result(conn)


def freshness_result(
    conn: duckdb.DuckDBPyConnection, tenants: list[str], interval_seconds: float, now: datetime
) -> dg.AssetCheckResult:
    limit = FRESHNESS_INTERVALS * interval_seconds
    last = dict(
        conn.sql(
            "SELECT tenant, max(observed_at) FROM sync_runs WHERE status = 'ok' GROUP BY tenant"
        ).fetchall()
    )
    lags = {t: (now - last[t]).total_seconds() if t in last else None for t in tenants}
    stale = sorted(t for t, lag in lags.items() if lag is None or lag > limit)
    return dg.AssetCheckResult(
        check_name="sync_runs_fresh",
        passed=not stale,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"stale: {', '.join(stale)}" if stale else f"every tenant synced within {limit:g} s",
        metadata={
            "limit_seconds": limit,
            "lag_seconds": dg.MetadataValue.json(
                {t: None if v is None else round(v, 1) for t, v in lags.items()}
            ),
        },
    )


@dg.asset_check(
    asset="sync_runs",
    name="sync_runs_fresh",
    description=(
        "Every configured tenant's last applied sync (server clock) is at most 2 x the poll interval old. "
        "Also scheduled on its own, since a capture that keeps failing runs no check downstream of it."
    ),
)
def sync_runs_fresh(api: DevanaApiResource, archive: JobsArchiveResource) -> dg.AssetCheckResult:
    if not archive.exists():
        return dg.AssetCheckResult(
            passed=False,
            severity=dg.AssetCheckSeverity.ERROR,
            description="no archive yet: no sync ever applied",
        )
    with closing(archive.open_for_reading()) as conn:
        return freshness_result(conn, api.tenant_names(), api.poll_interval_seconds, datetime.now(UTC))
