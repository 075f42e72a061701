"""The statistics' I/O side: read archive rows from DuckDB, compute with jobs_pipeline.analytics,
write the stats_* tables back, and keep documented views over them.

Conventions (also in every table's COMMENT): times are UTC; buckets are 'hour', 'day' and ISO
'week' (Monday); job_type = '*' is the all-types row; quantiles use linear interpolation
(DuckDB quantile_cont); rates carry Wilson 95 % intervals.

Incremental: `refresh_statistics(conn, days=[d])` reads only the jobs whose life overlaps d's week
plus the trailing baseline (BASELINE_DAYS before it), then, in one transaction, deletes and
rewrites only the rows d owns: d's hours, d itself, d's ISO week (recomputed from its 7 days),
and the per-day rows of d. Other days' rows are untouched, and equal what a full recompute with
the same as_of writes. Trailing baselines of *later* days (slow-job p99, spike baselines, ETA
history) are not recomputed: refresh those days too if d's data changed after they were computed.

Cookbook (DuckDB SQL; the same text is in docs/analytics-cookbook.md):

    -- p95 run time of EXTRACTION per day, last month
    SELECT day, runs, p95_s
    FROM daily_run_time
    WHERE job_type = 'EXTRACTION'
      AND day >= date_trunc('month', current_date) - INTERVAL 1 MONTH
      AND day <  date_trunc('month', current_date)
    ORDER BY day;

    -- failure rate with its 95 % interval, by type, this ISO week
    SELECT job_type, finished, error, failure_rate, failure_rate_lower, failure_rate_upper
    FROM failure_rate_by_type
    WHERE bucket_grain = 'week'
      AND bucket_start = date_trunc('week', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
    ORDER BY failure_rate DESC;

    -- hours whose failures spiked yesterday
    SELECT bucket_start, job_type, errors, finished, baseline_rate, z_score
    FROM failure_spikes
    WHERE bucket_grain = 'hour' AND bucket_start >= current_date - 1 AND bucket_start < current_date;

    -- what is running and when it should end
    SELECT job_id, job_type, progress, elapsed_s, remaining_s, eta_at, over_vendor_max
    FROM running_job_eta WHERE still_running ORDER BY eta_at;
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import TypeVar

import duckdb
import polars as pl

from jobs_pipeline.analytics.buckets import Scope, week_start
from jobs_pipeline.analytics.compute import (
    compute_running_eta,
    compute_statistics,
    read_window,
    running_eta_window,
)
from jobs_pipeline.analytics.conventions import (
    ACTIVE_STATUSES,
    DONE,
    IN_PROGRESS,
    OBSERVABLE_HOURS,
    SIZE_UNITS,
)
from jobs_pipeline.analytics.coverage import BEFORE_ARCHIVE, GAP_COLUMNS
from jobs_pipeline.analytics.prepare import JOB_INPUT_COLUMNS
from jobs_pipeline.analytics.schema import TABLES, TableSpec, conform

# The API lists a job only during its first 24 h, so everything the archive can learn about a job
# (start, completion, disappearance, last sighting) lies within a day of its creation. Reads bound
# created_at with this margin so that DuckDB skips old row groups instead of rescanning history.
JOB_LIFE_BOUND = timedelta(days=2)
T = TypeVar("T")
# A full recompute is cut into chunks of this many ISO weeks to bound memory.
CHUNK_WEEKS = 4


@dataclass(frozen=True)
class ViewSpec:
    name: str
    comment: str
    sql: str
    columns: tuple[tuple[str, str], ...]


def _utc(value: datetime) -> datetime:
    """A tz-aware UTC datetime for SQL parameters (naive input is taken as UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# ------------------------------------------------------------------------------------------------
# Schema: tables, views, comments


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _create_table_sql(spec: TableSpec) -> str:
    columns = ",\n    ".join(f"{c.name} {c.sql_type}" for c in spec.columns)
    return f"CREATE TABLE IF NOT EXISTS {spec.name} (\n    {columns}\n)"


VIEWS: tuple[ViewSpec, ...] = (
    ViewSpec(
        "daily_run_time",
        "Run time (completed_at - started_at) of DONE jobs per UTC day and type, from stats_durations; "
        "job_type '*' = all types. Quantiles use linear interpolation (quantile_cont).",
        """
        SELECT CAST(timezone('UTC', bucket_start) AS DATE) AS day, tenant, job_type,
               count AS runs, mean_s, p50_s, p90_s, p95_s, p99_s, max_s
        FROM stats_durations
        WHERE bucket_grain = 'day' AND metric = 'run_time'
        """,
        (
            ("day", "UTC day of completion."),
            ("tenant", "Tenant (API account)."),
            ("job_type", "Job type; '*' = all types."),
            ("runs", "DONE runs completed that day."),
            ("mean_s", "Mean run time, seconds."),
            ("p50_s", "Median run time, seconds."),
            ("p90_s", "90th percentile run time, seconds."),
            ("p95_s", "95th percentile run time, seconds."),
            ("p99_s", "99th percentile run time, seconds."),
            ("max_s", "Longest run time, seconds."),
        ),
    ),
    ViewSpec(
        "failure_rate_by_type",
        "Failure rate ERROR / (DONE + ERROR) and kill rate per bucket and type, with Wilson 95 % intervals "
        "(from stats_failure_rates).",
        """
        SELECT bucket_grain, bucket_start, tenant, job_type, done + error AS finished, error,
               failure_rate, failure_rate_lower, failure_rate_upper,
               killed, killed_rate, killed_rate_lower, killed_rate_upper, coverage
        FROM stats_failure_rates
        """,
        (
            ("bucket_grain", "'hour', 'day' or 'week'."),
            ("bucket_start", "Bucket start, UTC."),
            ("tenant", "Tenant (API account)."),
            ("job_type", "Job type; '*' = all types."),
            ("finished", "DONE + ERROR jobs that ended in the bucket."),
            ("error", "ERROR jobs that ended in the bucket."),
            ("failure_rate", "error / finished."),
            ("failure_rate_lower", "Wilson 95 % lower bound."),
            ("failure_rate_upper", "Wilson 95 % upper bound."),
            ("killed", "Jobs inferred KILLED in the bucket."),
            ("killed_rate", "killed / (finished + killed)."),
            ("killed_rate_lower", "Wilson 95 % lower bound."),
            ("killed_rate_upper", "Wilson 95 % upper bound."),
            (
                "coverage",
                "complete | partial | status_selective (biased: leave out of trends; see stats_coverage).",
            ),
        ),
    ),
    ViewSpec(
        "slow_jobs",
        "Runs slower than their type's trailing p99 (previous 7 days) and/or the vendor's typical maximum, "
        "with the job's target (from stats_slow_jobs and jobs).",
        """
        SELECT s.tenant, s.completed_day, s.job_id, s.job_type, j.target_id, s.status,
               s.started_at, s.completed_at, s.run_time_s,
               s.trailing_p99_s, s.run_time_s / s.trailing_p99_s AS times_trailing_p99, s.over_trailing_p99,
               s.vendor_max_s, s.run_time_s / s.vendor_max_s AS times_vendor_max, s.over_vendor_max
        FROM stats_slow_jobs s LEFT JOIN jobs j ON j.tenant = s.tenant AND j.job_id = s.job_id
        """,
        (
            ("tenant", "Tenant (API account)."),
            ("completed_day", "UTC day of completion."),
            ("job_id", "The job."),
            ("job_type", "Its type."),
            ("target_id", "The resource it worked on."),
            ("status", "DONE or ERROR."),
            ("started_at", "Start, UTC."),
            ("completed_at", "End, UTC."),
            ("run_time_s", "Run time, seconds."),
            ("trailing_p99_s", "The type's p99 over the 7 days before completed_day (NULL: too few runs)."),
            ("times_trailing_p99", "run_time_s / trailing_p99_s."),
            ("over_trailing_p99", "Slower than the trailing p99."),
            ("vendor_max_s", "Vendor's typical maximum for the type, seconds."),
            ("times_vendor_max", "run_time_s / vendor_max_s."),
            ("over_vendor_max", "Slower than the vendor's typical maximum."),
        ),
    ),
    ViewSpec(
        "failure_spikes",
        "Buckets whose error count is a spike against the trailing 7-day error rate of the type (one-sided "
        "binomial score test, z >= 3.09, at least 3 errors; see stats_failure_spikes).",
        """
        SELECT bucket_grain, bucket_start, tenant, job_type, errors, finished, error_rate,
               baseline_rate, baseline_finished, z_score, p_value
        FROM stats_failure_spikes
        WHERE is_spike
        """,
        (
            ("bucket_grain", "'hour', 'day' or 'week'."),
            ("bucket_start", "Bucket start, UTC."),
            ("tenant", "Tenant (API account)."),
            ("job_type", "Job type; '*' = all types."),
            ("errors", "ERROR jobs in the bucket."),
            ("finished", "DONE + ERROR jobs in the bucket."),
            ("error_rate", "errors / finished."),
            ("baseline_rate", "Error rate of the 7 days before the bucket."),
            ("baseline_finished", "Finished jobs in that baseline."),
            ("z_score", "Score statistic of the test."),
            ("p_value", "One-sided p-value (normal approximation)."),
        ),
    ),
    ViewSpec(
        "retry_candidates",
        "ERROR jobs whose target has no DONE job of the same type created later: what a person might re-run. "
        "Read-only advice (the archiver never retries). Live over the jobs table.",
        f"""
        SELECT e.tenant, e.job_id, e.target_id, e.job_type, e.error, e.created_at, e.completed_at,
               (SELECT count(*) FROM jobs l
                 WHERE l.tenant = e.tenant AND l.target_id = e.target_id AND l.job_type = e.job_type
                   AND l.created_at > e.created_at) AS later_attempts
        FROM jobs e
        WHERE e.status = 'ERROR'
          AND NOT EXISTS (
              SELECT 1 FROM jobs d
              WHERE d.tenant = e.tenant AND d.target_id = e.target_id AND d.job_type = e.job_type
                AND d.status = '{DONE}' AND d.created_at > e.created_at)
        """,
        (
            ("tenant", "Tenant (API account)."),
            ("job_id", "The failed job."),
            (
                "target_id",
                "Its target (document, folder, ...); NULL targets cannot be matched and stay listed.",
            ),
            ("job_type", "Its type."),
            ("error", "The API's error message."),
            ("created_at", "When the failed job was created, UTC."),
            ("completed_at", "When it failed, UTC."),
            ("later_attempts", "Jobs of the same target and type created after it (any status)."),
        ),
    ),
    ViewSpec(
        "running_job_eta",
        "Remaining-time estimates of the jobs running at the last refresh (stats_running_eta), with their "
        "current archive status: still_running is FALSE once the archive has seen them end.",
        f"""
        SELECT r.tenant, r.job_id, r.job_type, j.target_id, j.status AS current_status,
               coalesce(j.status = '{IN_PROGRESS}' AND j.vanished_at IS NULL, FALSE) AS still_running,
               r.as_of, r.started_at, r.elapsed_s, r.progress, r.remaining_s, r.eta_at,
               r.progress_remaining_s, r.history_remaining_s, r.progress_weight,
               r.vendor_max_s, r.over_vendor_max
        FROM stats_running_eta r LEFT JOIN jobs j ON j.tenant = r.tenant AND j.job_id = r.job_id
        """,
        (
            ("tenant", "Tenant (API account)."),
            ("job_id", "The job."),
            ("job_type", "Its type."),
            ("target_id", "The resource it works on."),
            ("current_status", "Its status in the archive now."),
            ("still_running", "TRUE while the archive still sees it IN_PROGRESS."),
            ("as_of", "Instant of the estimate, UTC."),
            ("started_at", "Start, UTC."),
            ("elapsed_s", "Seconds run at as_of."),
            ("progress", "Progress at the last sighting, percent."),
            ("remaining_s", "Blended remaining-time estimate, seconds."),
            ("eta_at", "Expected completion, UTC."),
            ("progress_remaining_s", "Progress-only estimate, seconds."),
            ("history_remaining_s", "History-only (Kaplan-Meier) estimate, seconds."),
            ("progress_weight", "Weight of the progress estimate, 0..1."),
            ("vendor_max_s", "Vendor's typical maximum for the type, seconds."),
            ("over_vendor_max", "Already running longer than that."),
        ),
    ),
    ViewSpec(
        "job_timeline",
        "Everything known about each job in time order: its lifecycle stamps (created, started, completed, "
        "vanished) and the status changes the syncs recorded (exact, or bracketed between two syncs).",
        """
        WITH events AS (
            SELECT tenant, job_id, 'created' AS event, NULL::VARCHAR AS from_status, NULL::VARCHAR AS to_status,
                   created_at AS occurred_at, created_at AS at_earliest, created_at AS at_latest,
                   'api' AS source, NULL::VARCHAR AS sync_id, 0 AS rank_hint
            FROM jobs
            UNION ALL
            SELECT tenant, job_id, 'started', NULL, NULL, started_at, started_at, started_at, 'api', NULL, 1
            FROM jobs WHERE started_at IS NOT NULL
            UNION ALL
            SELECT tenant, job_id, 'completed', NULL, status, completed_at, completed_at, completed_at, 'api', NULL, 3
            FROM jobs WHERE completed_at IS NOT NULL
            UNION ALL
            SELECT tenant, job_id, 'vanished', NULL, status, vanished_at, last_seen_at, vanished_at,
                   'archive', last_sync_id, 4
            FROM jobs WHERE vanished_at IS NOT NULL
            UNION ALL
            SELECT tenant, job_id, 'status_change', from_status, to_status, changed_at,
                   coalesce(changed_at, changed_after), coalesce(changed_at, changed_before), source, sync_id, 2
            FROM job_status_changes
        )
        SELECT e.tenant, e.job_id, j.job_type, j.target_id,
               row_number() OVER (PARTITION BY e.tenant, e.job_id
                                  ORDER BY coalesce(e.occurred_at, e.at_latest), e.rank_hint) AS seq,
               e.event, e.from_status, e.to_status, e.occurred_at, e.at_earliest, e.at_latest,
               e.occurred_at IS NOT NULL AS exact, e.source, e.sync_id
        FROM events e LEFT JOIN jobs j ON j.tenant = e.tenant AND j.job_id = e.job_id
        """,
        (
            ("tenant", "Tenant (API account)."),
            ("job_id", "The job."),
            ("job_type", "Its type."),
            ("target_id", "The resource it works on."),
            ("seq", "Position of the event in the job's history (1 = first)."),
            ("event", "created | started | completed | vanished | status_change."),
            ("from_status", "Status before (status_change only)."),
            ("to_status", "Status after (status_change), final status (completed, vanished)."),
            ("occurred_at", "Exact instant, UTC; NULL when only bracketed between two syncs."),
            ("at_earliest", "Earliest possible instant, UTC."),
            ("at_latest", "Latest possible instant, UTC."),
            ("exact", "TRUE when occurred_at is known exactly."),
            ("source", "Where the fact comes from (api, archive, or the change's recorded source)."),
            ("sync_id", "The sync that recorded it, when known."),
        ),
    ),
)


def ensure_statistics_schema(conn: duckdb.DuckDBPyConnection) -> None:
    """Create the stats_* tables (if missing) and (re)create the views, all with COMMENTs.

    The views read the archive's `jobs` and `job_status_changes` tables, which must exist.
    """
    for spec in TABLES:
        conn.sql(_create_table_sql(spec))
        # A column added to a spec later reaches archives made before it (appended at the end;
        # inserts name their columns, so the order does not matter).
        for column in spec.columns:
            conn.sql(f"ALTER TABLE {spec.name} ADD COLUMN IF NOT EXISTS {column.name} {column.sql_type}")
        conn.sql(f"COMMENT ON TABLE {spec.name} IS {_sql_literal(spec.comment)}")
        for column in spec.columns:
            conn.sql(f"COMMENT ON COLUMN {spec.name}.{column.name} IS {_sql_literal(column.comment)}")
    for view in VIEWS:
        conn.sql(f"CREATE OR REPLACE VIEW {view.name} AS {view.sql.strip()}")
        conn.sql(f"COMMENT ON VIEW {view.name} IS {_sql_literal(view.comment)}")
        for name, comment in view.columns:
            conn.sql(f"COMMENT ON COLUMN {view.name}.{name} IS {_sql_literal(comment)}")


# ------------------------------------------------------------------------------------------------
# Reads


def _metadata_projection() -> str:
    # Only the sized types' metadata is read: it is the only JSON the statistics parse.
    types = ", ".join(_sql_literal(t) for t in SIZE_UNITS)
    return f"CASE WHEN job_type IN ({types}) THEN CAST(metadata AS VARCHAR) END AS metadata"


def read_jobs(
    conn: duckdb.DuckDBPyConnection, tenant: str, start: datetime, end: datetime, as_of: datetime
) -> pl.DataFrame:
    """The tenant's jobs whose life [created_at, last known instant] overlaps [start, end).

    Active jobs the API still shows (younger than 24 h at as_of, not vanished) are alive until as_of.
    """
    columns = ", ".join(JOB_INPUT_COLUMNS)
    active = ", ".join(_sql_literal(s) for s in ACTIVE_STATUSES)
    query = f"""
        SELECT {columns}, {_metadata_projection()}
        FROM jobs
        WHERE tenant = $tenant
          AND created_at < $end
          AND created_at >= $bound
          AND (greatest(created_at, started_at, completed_at, vanished_at, last_seen_at, updated_at) >= $start
               OR (status IN ({active}) AND vanished_at IS NULL
                   AND created_at >= $as_of - INTERVAL {OBSERVABLE_HOURS} HOUR))
    """
    params = {
        "tenant": tenant,
        "start": _utc(start),
        "end": _utc(end),
        "bound": _utc(start) - JOB_LIFE_BOUND,
        "as_of": _utc(as_of),
    }
    return conn.sql(query, params=params).pl()


def read_snapshots(conn: duckdb.DuckDBPyConnection, tenant: str, scope: Scope) -> pl.DataFrame:
    """IN_PROGRESS snapshots of the tenant's DONE jobs completed in the scope's window (ETA backtest):
    job_id, observed_at, progress (tenant and status are fixed by the query, so not read: at ten
    million snapshots every column counts)."""
    query = f"""
        SELECT s.job_id, s.observed_at, s.progress
        FROM job_snapshots s
        WHERE s.tenant = $tenant
          AND s.status = '{IN_PROGRESS}'
          AND s.observed_at >= $bound AND s.observed_at < $end
          AND s.job_id IN (
              SELECT job_id FROM jobs
              WHERE tenant = $tenant AND status = '{DONE}'
                AND completed_at >= $start AND completed_at < $end
                AND created_at >= $bound AND created_at < $end)
    """
    params = {
        "tenant": tenant,
        "start": _utc(scope.start),
        "end": _utc(scope.end),
        "bound": _utc(scope.start) - JOB_LIFE_BOUND,
    }
    return conn.sql(query, params=params).pl()


def read_gaps(conn: duckdb.DuckDBPyConnection, tenant: str) -> pl.DataFrame:
    """Every gap the tenant's syncs recorded (coverage.GAP_COLUMNS), naive UTC; is_latest marks the
    gaps of its latest sync. Few rows: only syncs that saw less than everything have any."""
    rows = conn.execute(
        """
        SELECT sync_id, timezone('UTC', observed_at), CAST(gaps AS VARCHAR),
               observed_at = max(observed_at) OVER () AS is_latest, coverage_complete
        FROM sync_runs WHERE tenant = ?
        """,
        [tenant],
    ).fetchall()
    records: list[dict[str, object]] = []
    if rows:
        first = min(observed_at for _, observed_at, *_ in rows)
        # Older than the API's window at the first sync: never observable (coverage.py).
        records.append(
            {
                "tenant": tenant,
                "sync_id": None,
                "observed_at": first,
                "is_latest": True,
                "slice": "ALL",
                "reason": BEFORE_ARCHIVE,
                "created_from": datetime(1970, 1, 1),
                "created_to": first - timedelta(hours=OBSERVABLE_HOURS, microseconds=1),
            }
        )
    for sync_id, observed_at, gaps_json, is_latest, complete in rows:
        if complete:
            continue
        for gap in json.loads(gaps_json or "[]"):
            records.append(
                {
                    "tenant": tenant,
                    "sync_id": sync_id,
                    "observed_at": observed_at,
                    "is_latest": bool(is_latest),
                    "slice": gap["slice"],
                    "reason": gap["reason"],
                    "created_from": _naive_instant(gap.get("created_from")),
                    "created_to": _naive_instant(gap.get("created_to")),
                }
            )
    return pl.DataFrame(records, schema=GAP_COLUMNS)


def _naive_instant(text: str | None) -> datetime | None:
    if not text:
        return None
    value = datetime.fromisoformat(text)
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def _table_exists(conn: duckdb.DuckDBPyConnection, name: str) -> bool:
    rows = conn.sql(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = $name AND NOT temporary",
        params={"name": name},
    ).fetchall()
    return bool(rows[0][0])


def latest_observation(conn: duckdb.DuckDBPyConnection, tenant: str) -> datetime | None:
    """The tenant's knowledge horizon: the latest server clock of a recorded sync or of a sighting.

    (The archive records only applied syncs; sync_runs.error holds warnings, not failures.)"""
    candidates: list[datetime] = []
    seen = conn.sql("SELECT max(last_seen_at) FROM jobs WHERE tenant = $t", params={"t": tenant}).fetchall()
    if seen[0][0] is not None:
        candidates.append(seen[0][0])
    if _table_exists(conn, "sync_runs"):
        synced = conn.sql(
            "SELECT max(observed_at) FROM sync_runs WHERE tenant = $t", params={"t": tenant}
        ).fetchall()
        if synced[0][0] is not None:
            candidates.append(synced[0][0])
    return max(_utc(c) for c in candidates) if candidates else None


def _tenant_days(conn: duckdb.DuckDBPyConnection, tenant: str, as_of: datetime) -> tuple[date, date] | None:
    rows = conn.sql(
        """
        SELECT CAST(timezone('UTC', min(created_at)) AS DATE),
               CAST(timezone('UTC', max(greatest(created_at, completed_at, vanished_at))) AS DATE)
        FROM jobs WHERE tenant = $t
        """,
        params={"t": tenant},
    ).fetchall()
    first, last = rows[0]
    if first is None:
        return None
    return first, max(last, _utc(as_of).date())


def days_touched_since(
    conn: duckdb.DuckDBPyConnection, since: datetime, *, tenant: str | None = None
) -> list[date]:
    """UTC days whose statistics may have changed because of what the archive learnt since `since`:
    the created/started/completed/vanished/last-seen days of every job seen or changed since then
    (the last-seen day covers a job still running: it is in flight up to now)."""
    query = """
        SELECT DISTINCT CAST(timezone('UTC', ts) AS DATE) AS day
        FROM (
            SELECT unnest([created_at, started_at, completed_at, vanished_at, last_seen_at]) AS ts
            FROM jobs
            WHERE (last_seen_at >= $since OR updated_at >= $since OR vanished_at >= $since)
              AND ($tenant IS NULL OR tenant = $tenant)
        )
        WHERE ts IS NOT NULL
        ORDER BY day
    """
    rows = conn.sql(query, params={"since": _utc(since), "tenant": tenant}).fetchall()
    return [r[0] for r in rows]


# ------------------------------------------------------------------------------------------------
# Writes


def _insert(conn: duckdb.DuckDBPyConnection, spec: TableSpec, frame: pl.DataFrame) -> int:
    if frame.is_empty():
        return 0
    conformed = conform(frame, spec)
    view_name = f"_stats_insert_{spec.name}"
    conn.register(view_name, conformed)
    try:
        columns = ", ".join(spec.column_names)
        conn.sql(f"INSERT INTO {spec.name} ({columns}) SELECT {columns} FROM {view_name}")
    finally:
        conn.unregister(view_name)
    return conformed.height


def _replace_scope(
    conn: duckdb.DuckDBPyConnection, tenant: str, scope: Scope, frames: dict[str, pl.DataFrame]
) -> dict[str, int]:
    """Delete the rows the scope owns in every bucket/day table and insert the new ones."""
    buckets = scope.buckets.select("bucket_grain", pl.col("bucket_start").dt.replace_time_zone("UTC"))
    days = pl.DataFrame({"day": list(scope.days)}, schema={"day": pl.Date})
    conn.register("_stats_scope_buckets", buckets)
    conn.register("_stats_scope_days", days)
    written: dict[str, int] = {}
    try:
        for spec in TABLES:
            if spec.name not in frames:
                continue
            if spec.replaced_by == "bucket":
                conn.sql(
                    f"""DELETE FROM {spec.name} USING _stats_scope_buckets b
                        WHERE {spec.name}.tenant = $tenant
                          AND {spec.name}.bucket_grain = b.bucket_grain
                          AND {spec.name}.bucket_start = b.bucket_start""",
                    params={"tenant": tenant},
                )
            elif spec.replaced_by == "day":
                conn.sql(
                    f"""DELETE FROM {spec.name} WHERE tenant = $tenant
                        AND completed_day IN (SELECT day FROM _stats_scope_days)""",
                    params={"tenant": tenant},
                )
            else:
                raise ValueError(f"{spec.name} is not a bucket/day table")
            written[spec.name] = _insert(conn, spec, frames[spec.name])
    finally:
        conn.unregister("_stats_scope_buckets")
        conn.unregister("_stats_scope_days")
    return written


def _replace_tenant(
    conn: duckdb.DuckDBPyConnection, spec: TableSpec, tenant: str, frame: pl.DataFrame
) -> int:
    conn.sql(f"DELETE FROM {spec.name} WHERE tenant = $tenant", params={"tenant": tenant})
    return _insert(conn, spec, frame)


# ------------------------------------------------------------------------------------------------
# Refresh


def _chunks(days: Sequence[date]) -> list[Scope]:
    """Scopes of at most CHUNK_WEEKS ISO weeks each (a week is never split: its row needs all 7 days)."""
    by_week: dict[date, list[date]] = {}
    for day in sorted(set(days)):
        by_week.setdefault(week_start(day), []).append(day)
    weeks = sorted(by_week)
    scopes = []
    for i in range(0, len(weeks), CHUNK_WEEKS):
        chunk_days = [d for w in weeks[i : i + CHUNK_WEEKS] for d in by_week[w]]
        scopes.append(Scope.for_days(chunk_days))
    return scopes


def _all_days(first: date, last: date) -> list[date]:
    scope_first = week_start(first)
    scope_last = week_start(last) + timedelta(days=6)
    return [scope_first + timedelta(days=i) for i in range((scope_last - scope_first).days + 1)]


def _tenants(conn: duckdb.DuckDBPyConnection, tenant: str | None) -> list[str]:
    if tenant is not None:
        return [tenant]
    return [r[0] for r in conn.sql("SELECT DISTINCT tenant FROM jobs ORDER BY tenant").fetchall()]


def _in_transaction(conn: duckdb.DuckDBPyConnection, work: Callable[[], T]) -> T:
    conn.begin()
    try:
        result = work()
    except BaseException:
        conn.rollback()
        raise
    conn.commit()
    return result


def refresh_statistics(
    conn: duckdb.DuckDBPyConnection,
    *,
    tenant: str | None = None,
    days: Iterable[date] | None = None,
    as_of: datetime | None = None,
) -> dict[str, int]:
    """Recompute the statistics of `days` (all days with data when None) and write them back.

    tenant: one tenant, or every tenant in `jobs` when None.
    as_of: the instant running jobs are running until (default: the tenant's latest observation,
    see `latest_observation`); pass the same as_of to compare two refreshes.
    Returns the number of rows written per stats table (summed over tenants and chunks).
    Each chunk of at most CHUNK_WEEKS weeks (and the running-ETA table) is replaced in its own
    transaction, so `conn` must not be inside an open transaction.
    """
    ensure_statistics_schema(conn)
    written = {spec.name: 0 for spec in TABLES}
    wanted_days = sorted(set(days)) if days is not None else None
    for name in _tenants(conn, tenant):
        tenant_as_of = _utc(as_of) if as_of is not None else latest_observation(conn, name)
        if tenant_as_of is None:
            continue
        if wanted_days is None:
            span = _tenant_days(conn, name, tenant_as_of)
            if span is None:
                continue
            tenant_days = _all_days(*span)
        else:
            tenant_days = wanted_days
        gaps = read_gaps(conn, name)
        for scope in _chunks(tenant_days) if tenant_days else []:
            start, end = read_window(scope)
            jobs = read_jobs(conn, name, start, end, tenant_as_of)
            snapshots = read_snapshots(conn, name, scope)
            frames = compute_statistics(jobs, snapshots, scope, tenant_as_of, gaps)
            counts = _in_transaction(conn, partial(_replace_scope, conn, name, scope, frames))
            for table, rows in counts.items():
                written[table] += rows
        eta_start, eta_end = running_eta_window(tenant_as_of)
        recent = read_jobs(conn, name, eta_start, eta_end, tenant_as_of)
        eta = compute_running_eta(recent, tenant_as_of)
        spec = next(s for s in TABLES if s.replaced_by == "tenant")
        written[spec.name] += _in_transaction(conn, partial(_replace_tenant, conn, spec, name, eta))
    return written
