"""The statistics tables (stats_*), daily-partitioned: a partition is one UTC day of statistics.

Each run calls jobs_pipeline.stats_store.refresh_statistics(days=<the run's days>) on the writer
connection (so it is in the archive pool). A backfill over any range rebuilds history from the
archive alone; runs take at most a week of days, so that a long backfill never holds the writer
lock long enough to make a scheduled capture wait.

Automation: after every update of the archive tables, the partitions of today AND yesterday are
refreshed (declarative automation, evaluated by the `statistics_automation` sensor). Yesterday too,
because the API shows a job for 24 h: a sync can still learn about yesterday's jobs today (a late
start, a gap filled by a later sync, a job that vanished), and yesterday's figures must follow.
"""

# No `from __future__ import annotations` here: Dagster inspects the `context` annotation at
# decoration time and does not resolve string annotations.

import os
from collections.abc import Iterator
from contextlib import closing
from datetime import date, timedelta
from typing import Any

import dagster as dg
import duckdb

from jobs_pipeline.analytics.schema import TABLES, TableSpec
from jobs_pipeline.defs.names import ARCHIVE_POOL, STATISTICS_GROUP
from jobs_pipeline.defs.resources import JobsArchiveResource
from jobs_pipeline.stats_store import refresh_statistics

ENV_STATS_START = "JOBS_PIPELINE_STATS_START"
# Any day on or before the archive's first sync (earlier days are empty partitions, cheap to run).
DEFAULT_STATS_START = "2025-01-01"
FAILURE_SPIKE_CHECK = "no_failure_spike"
SPIKE_TABLE = "stats_failure_spikes"
# Partitions per run in a backfill: one ISO week is what one refresh chunk reads anyway.
MAX_DAYS_PER_RUN = 7

DAILY_PARTITIONS = dg.DailyPartitionsDefinition(
    start_date=os.environ.get(ENV_STATS_START) or DEFAULT_STATS_START,
    timezone="UTC",
    # Today's partition exists from midnight (not only once the day is over): it is refreshed live.
    end_offset=1,
)

# eager() on the latest partition only, widened to the latest two (today and yesterday).
STATISTICS_AUTOMATION = (
    dg.AutomationCondition.eager()
    .replace(
        dg.AutomationCondition.in_latest_time_window(),
        dg.AutomationCondition.in_latest_time_window(timedelta(days=2)),
    )
    .with_label("eager_today_and_yesterday")
)


def _table_schema(spec: TableSpec) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[dg.TableColumn(name=c.name, type=c.sql_type, description=c.comment) for c in spec.columns]
    )


def days_of(window: dg.TimeWindow) -> list[date]:
    """The UTC days a run's partition window covers (end exclusive)."""
    first, end = window.start.date(), window.end.date()
    return [first + timedelta(days=i) for i in range((end - first).days)]


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 60:.1f} min" if value >= 120 else f"{value:.1f} s"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def run_time_preview(conn: duckdb.DuckDBPyConnection, day: date) -> str:
    """Markdown: run time of DONE jobs completed on `day`, p50/p95/p99 per tenant and type."""
    rows = conn.execute(
        "SELECT tenant, job_type, runs, p50_s, p95_s, p99_s FROM daily_run_time WHERE day = ? "
        "ORDER BY tenant, job_type = '*' DESC, job_type",
        [day],
    ).fetchall()
    lines = [f"**Run time of DONE jobs completed on {day} (UTC)**", ""]
    if not rows:
        return "\n".join([*lines, "_No job completed that day._"])
    lines += ["| tenant | type | runs | p50 | p95 | p99 |", "|---|---|---:|---:|---:|---:|"]
    lines += [
        f"| {t} | {'all' if jt == '*' else jt} | {n} | {_seconds(p50)} | {_seconds(p95)} | {_seconds(p99)} |"
        for t, jt, n, p50, p95, p99 in rows
    ]
    return "\n".join(lines)


def failure_rate_preview(conn: duckdb.DuckDBPyConnection, day: date) -> str:
    """Markdown: failure rate with its Wilson 95 % interval per tenant and type, for `day`."""
    rows = conn.execute(
        "SELECT tenant, job_type, finished, error, failure_rate, failure_rate_lower, failure_rate_upper "
        "FROM failure_rate_by_type WHERE bucket_grain = 'day' "
        "AND CAST(timezone('UTC', bucket_start) AS DATE) = ? ORDER BY tenant, job_type = '*' DESC, job_type",
        [day],
    ).fetchall()
    lines = [f"**Failure rate ERROR / (DONE + ERROR) on {day} (UTC), 95 % Wilson interval**", ""]
    if not rows:
        return "\n".join([*lines, "_No job finished that day._"])
    lines += ["| tenant | type | finished | errors | rate | 95 % interval |", "|---|---|---:|---:|---:|---|"]
    lines += [
        f"| {t} | {'all' if jt == '*' else jt} | {n} | {e} | {_percent(r)} | {_percent(lo)} - {_percent(hi)} |"
        for t, jt, n, e, r, lo, hi in rows
    ]
    return "\n".join(lines)


def spike_result(conn: duckdb.DuckDBPyConnection, days: list[date]) -> dg.AssetCheckResult:
    """WARN when an hour or a day of `days` had a failure spike against its trailing 7-day baseline."""
    rows = conn.execute(
        "SELECT tenant, bucket_grain, bucket_start, job_type, errors, finished, error_rate, baseline_rate, z_score "
        "FROM failure_spikes WHERE bucket_grain IN ('hour', 'day') "
        "AND CAST(timezone('UTC', bucket_start) AS DATE) BETWEEN ? AND ? ORDER BY z_score DESC",
        [min(days), max(days)],
    ).fetchall()
    table = [
        "| tenant | bucket | start (UTC) | type | errors / finished | rate | baseline | z |",
        "|---|---|---|---|---|---|---|---|",
    ]
    table += [
        f"| {t} | {g} | {s:%Y-%m-%d %H:%M} | {jt} | {e} / {n} | {_percent(r)} | {_percent(b)} | {z:.1f} |"
        for t, g, s, jt, e, n, r, b, z in rows[:20]
    ]
    return dg.AssetCheckResult(
        check_name=FAILURE_SPIKE_CHECK,
        asset_key=SPIKE_TABLE,
        passed=not rows,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"{len(rows)} failure spike(s) between {min(days)} and {max(days)}"
            if rows
            else "no failure spike"
        ),
        metadata={"spikes": len(rows), "worst": dg.MetadataValue.md("\n".join(table)) if rows else "none"},
    )


@dg.multi_asset(
    name="statistics",
    specs=[
        dg.AssetSpec(
            spec.name,
            deps=["jobs", "job_snapshots"],
            group_name=STATISTICS_GROUP,
            description=spec.comment,
            kinds={"duckdb", "polars", "table"},
            partitions_def=DAILY_PARTITIONS,
            automation_condition=STATISTICS_AUTOMATION,
            metadata={
                "dagster/column_schema": _table_schema(spec),
                "dagster/table_name": f"archive.main.{spec.name}",
            },
        )
        for spec in TABLES
    ],
    check_specs=[
        dg.AssetCheckSpec(
            FAILURE_SPIKE_CHECK,
            asset=SPIKE_TABLE,
            description=(
                "WARN when an hour or a day of the refreshed days had significantly more failures than the "
                "type's trailing 7-day rate (one-sided binomial score test, see the failure_spikes view)."
            ),
        )
    ],
    pool=ARCHIVE_POOL,
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=MAX_DAYS_PER_RUN),
)
def statistics(
    context: dg.AssetExecutionContext, archive: JobsArchiveResource
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Refresh the statistics of the run's days, then describe them from the published copy."""
    days = days_of(context.partition_time_window)
    with archive.writer() as conn:
        written = refresh_statistics(conn, days=days)
    context.log.info(f"statistics of {days[0]}..{days[-1]} refreshed: {written}")
    # Read back from the published copy (the writer lock is already released).
    with closing(archive.open_for_reading()) as conn:
        previews = {
            "stats_durations": run_time_preview(conn, days[-1]),
            "stats_failure_rates": failure_rate_preview(conn, days[-1]),
        }
        for spec in TABLES:
            metadata: dict[str, Any] = {
                "rows_written": written.get(spec.name, 0),
                "days": dg.MetadataValue.text(f"{days[0]} .. {days[-1]}"),
            }
            if spec.name in previews:
                metadata["preview"] = dg.MetadataValue.md(previews[spec.name])
            yield dg.MaterializeResult(asset_key=spec.name, metadata=metadata)
        yield spike_result(conn, days)
