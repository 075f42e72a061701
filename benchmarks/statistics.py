"""Benchmark: the Polars statistics vs the same figures in DuckDB SQL, on a synthetic archive.

    .venv/bin/python -m benchmarks.statistics [--jobs 3000000 --snapshots 10000000 --days 30]

Builds a synthetic archive (contract tables `jobs`, `job_snapshots`) in a temporary DuckDB file,
then times, in separate subprocesses (so that each peak RSS is its own), the main figures of one
full recompute (durations, failure rates, type mix, in-flight, survival, ETA backtest):
- Polars: the frames are read once with stats_store's readers, then the analytics are timed;
- DuckDB: the equivalent SQL below, each query materialised.
Median of 3 runs each; peak memory is ru_maxrss of each subprocess. Writes
benchmarks/results/statistics.md.

The SQL here is also the tests' independent cross-check (jobs_pipeline_tests/test_analytics_sql.py):
Polars and SQL must produce the same rows on random archives, so the benchmark compares equal work.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from jobs_pipeline.analytics.conventions import (
    BASELINE_DAYS,
    ETA_FULL_TRUST_PROGRESS,
    ETA_MIN_PROGRESS,
    KM_TOLERANCE,
    WILSON_Z,
)

RESULTS = Path(__file__).parent / "results" / "statistics.md"


# ------------------------------------------------------------------------------------------------
# Reference SQL. Timestamps are handled as naive UTC (timezone('UTC', ...)), like the Polars side.


def _ts(value: datetime) -> str:
    naive = value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    return f"TIMESTAMP '{naive.isoformat(sep=' ')}'"


def _seconds(start: str, end: str) -> str:
    return f"CASE WHEN {end} >= {start} THEN (epoch_us({end}) - epoch_us({start})) / 1e6 END"


def prepared_jobs_cte(as_of: datetime, tenant: str | None = None) -> str:
    """CTE `pj`: the jobs with the derived columns of analytics/prepare.py, written independently."""
    where = f"WHERE tenant = '{tenant}'" if tenant else ""
    as_of_sql = _ts(as_of)
    return f"""
    raw AS (
        SELECT tenant, job_id, target_id, job_type, status, progress,
               timezone('UTC', created_at) AS created_at, timezone('UTC', started_at) AS started_at,
               timezone('UTC', completed_at) AS completed_at, timezone('UTC', updated_at) AS updated_at,
               timezone('UTC', last_seen_at) AS last_seen_at, timezone('UTC', vanished_at) AS vanished_at,
               CAST(metadata AS VARCHAR) AS metadata
        FROM jobs {where}
    ),
    flagged AS (
        SELECT *,
               status IN ('PENDING', 'IN_PROGRESS') AND vanished_at IS NULL
                   AND created_at >= {as_of_sql} - INTERVAL 24 HOUR AS observable,
               CASE WHEN status IN ('DONE', 'ERROR') THEN coalesce(completed_at, updated_at)
                    WHEN status = 'KILLED' THEN coalesce(vanished_at, last_seen_at) END AS finished_at
        FROM raw
    ),
    ended AS (
        SELECT *,
               CASE WHEN started_at IS NOT NULL THEN least({as_of_sql},
                    CASE WHEN finished_at IS NOT NULL THEN finished_at
                         WHEN observable THEN {as_of_sql}
                         WHEN status IN ('PENDING', 'IN_PROGRESS') THEN coalesce(last_seen_at, updated_at)
                         ELSE coalesce(completed_at, last_seen_at, updated_at) END) END AS run_end,
               CASE WHEN status = 'DONE' THEN 'done' WHEN status = 'ERROR' THEN 'error'
                    WHEN status = 'KILLED' THEN 'killed' WHEN observable THEN 'running' ELSE 'lost' END AS end_kind
        FROM flagged
    ),
    pj AS (
        SELECT *,
               CASE WHEN status IN ('DONE', 'ERROR') THEN {_seconds("started_at", "completed_at")} END AS run_time_s,
               {_seconds("created_at", "started_at")} AS queue_wait_s,
               CASE WHEN status IN ('DONE', 'ERROR') THEN {_seconds("created_at", "completed_at")} END AS end_to_end_s,
               {_seconds("started_at", "run_end")} AS elapsed_s
        FROM ended
    )"""


GRAINS_CTE = "grains(grain) AS (VALUES ('hour'), ('day'), ('week'))"


def _prelude(as_of: datetime, prepared: str | None) -> str:
    """The `pj` CTE: derived inline, or read from a table made once with prepared_jobs_table_sql."""
    return f"pj AS (SELECT * FROM {prepared})" if prepared else prepared_jobs_cte(as_of)


def prepared_jobs_table_sql(as_of: datetime, table: str) -> str:
    return f"CREATE OR REPLACE TEMP TABLE {table} AS WITH {prepared_jobs_cte(as_of)} SELECT * FROM pj"


def _by_bucket(source: str, ts: str, start: datetime, end: datetime) -> str:
    """Rows of `source` with (bucket_grain, bucket_start) for every grain, in [start, end)."""
    return f"""
        SELECT g.grain AS bucket_grain, date_trunc(g.grain, s.{ts}) AS bucket_start, s.*
        FROM {source} s CROSS JOIN grains g
        WHERE s.{ts} >= {_ts(start)} AND s.{ts} < {_ts(end)}"""


TYPE_OR_ALL = "CASE WHEN grouping(job_type) = 1 THEN '*' ELSE job_type END AS job_type"


def durations_sql(as_of: datetime, start: datetime, end: datetime, prepared: str | None = None) -> str:
    return f"""
    WITH {_prelude(as_of, prepared)}, {GRAINS_CTE},
    m AS (
        SELECT tenant, job_type, 'run_time' AS metric, completed_at AS ts, run_time_s AS v
        FROM pj WHERE status = 'DONE' AND run_time_s IS NOT NULL
        UNION ALL
        SELECT tenant, job_type, 'queue_wait', started_at, queue_wait_s FROM pj WHERE queue_wait_s IS NOT NULL
        UNION ALL
        SELECT tenant, job_type, 'end_to_end', completed_at, end_to_end_s
        FROM pj WHERE status = 'DONE' AND end_to_end_s IS NOT NULL
    ),
    b AS ({_by_bucket("m", "ts", start, end)}),
    agg AS (
        SELECT bucket_grain, bucket_start, tenant, {TYPE_OR_ALL}, metric,
               count(v) AS count, avg(v) AS mean_s,
               quantile_cont(v, [0.5, 0.9, 0.95, 0.99]) AS q, max(v) AS max_s
        FROM b
        GROUP BY GROUPING SETS ((bucket_grain, bucket_start, tenant, job_type, metric),
                                (bucket_grain, bucket_start, tenant, metric))
    )
    SELECT bucket_grain, bucket_start, tenant, job_type, metric, count, mean_s,
           q[1] AS p50_s, q[2] AS p90_s, q[3] AS p95_s, q[4] AS p99_s, max_s
    FROM agg"""


def _wilson(k: str, n: str, prefix: str) -> str:
    z2 = WILSON_Z * WILSON_Z
    p = f"({k}::DOUBLE / {n})"
    centre = f"(({p} + {z2} / (2.0 * {n})) / (1 + {z2} / {n}))"
    half = f"({WILSON_Z} / (1 + {z2} / {n}) * sqrt({p} * (1 - {p}) / {n} + {z2} / (4.0 * {n} * {n})))"
    return (
        f"CASE WHEN {n} > 0 THEN greatest(0.0, least(1.0, {centre} - {half})) END AS {prefix}_lower, "
        f"CASE WHEN {n} > 0 THEN greatest(0.0, least(1.0, {centre} + {half})) END AS {prefix}_upper"
    )


def failure_rates_sql(as_of: datetime, start: datetime, end: datetime, prepared: str | None = None) -> str:
    return f"""
    WITH {_prelude(as_of, prepared)}, {GRAINS_CTE},
    e AS (SELECT * FROM pj WHERE status IN ('DONE', 'ERROR', 'KILLED') AND finished_at IS NOT NULL),
    b AS ({_by_bucket("e", "finished_at", start, end)}),
    c AS (
        SELECT bucket_grain, bucket_start, tenant, {TYPE_OR_ALL},
               count(*) FILTER (WHERE status = 'DONE') AS done,
               count(*) FILTER (WHERE status = 'ERROR') AS error,
               count(*) FILTER (WHERE status = 'KILLED') AS killed
        FROM b
        GROUP BY GROUPING SETS ((bucket_grain, bucket_start, tenant, job_type), (bucket_grain, bucket_start, tenant))
    )
    SELECT *,
           CASE WHEN done + error > 0 THEN error / (done + error) END AS failure_rate,
           {_wilson("error", "(done + error)", "failure_rate")},
           CASE WHEN done + error + killed > 0 THEN killed / (done + error + killed) END AS killed_rate,
           {_wilson("killed", "(done + error + killed)", "killed_rate")}
    FROM c"""


def type_mix_sql(as_of: datetime, start: datetime, end: datetime, prepared: str | None = None) -> str:
    return f"""
    WITH {_prelude(as_of, prepared)}, {GRAINS_CTE},
    b AS ({_by_bucket("pj", "created_at", start, end)}),
    c AS (
        SELECT bucket_grain, bucket_start, tenant, {TYPE_OR_ALL}, count(*) AS jobs, coalesce(sum(elapsed_s), 0) AS run_time_s
        FROM b
        GROUP BY GROUPING SETS ((bucket_grain, bucket_start, tenant, job_type), (bucket_grain, bucket_start, tenant))
    )
    SELECT c.bucket_grain, c.bucket_start, c.tenant, c.job_type, c.jobs,
           c.jobs / t.jobs AS jobs_share, c.run_time_s,
           CASE WHEN t.run_time_s > 0 THEN c.run_time_s / t.run_time_s END AS run_time_share
    FROM c JOIN c t ON t.job_type = '*' AND t.bucket_grain = c.bucket_grain
         AND t.bucket_start = c.bucket_start AND t.tenant = c.tenant"""


def in_flight_sql(as_of: datetime, start: datetime, end: datetime, prepared: str | None = None) -> str:
    """Event sweep in SQL: +1 / -1 at interval ends, 0 at every hour edge, running sum per key."""
    as_of_naive = as_of.astimezone(UTC).replace(tzinfo=None) if as_of.tzinfo else as_of
    end_naive = end.astimezone(UTC).replace(tzinfo=None) if end.tzinfo else end
    horizon = _ts(min(end_naive, as_of_naive))
    return f"""
    WITH {_prelude(as_of, prepared)},
    iv AS (
        SELECT tenant, job_type, started_at AS s, run_end AS e FROM pj
        WHERE started_at IS NOT NULL AND run_end > started_at AND started_at < {horizon} AND run_end > {_ts(start)}
    ),
    keyed AS (
        SELECT tenant, job_type, s, e FROM iv UNION ALL SELECT tenant, '*', s, e FROM iv
    ),
    grid AS (
        SELECT k.tenant, k.job_type, t.t
        FROM (SELECT DISTINCT tenant, job_type FROM keyed) k
        CROSS JOIN (SELECT unnest(generate_series({_ts(start)}, {horizon}, INTERVAL 1 HOUR)) AS t
                    UNION SELECT {horizon}) t
    ),
    ev AS (
        SELECT tenant, job_type, t, sum(d) AS d FROM (
            SELECT tenant, job_type, s AS t, 1 AS d FROM keyed
            UNION ALL SELECT tenant, job_type, e, -1 FROM keyed
            UNION ALL SELECT tenant, job_type, t, 0 FROM grid
        ) GROUP BY ALL
    ),
    lv AS (
        SELECT tenant, job_type, t,
               sum(d) OVER (PARTITION BY tenant, job_type ORDER BY t ROWS UNBOUNDED PRECEDING) AS level,
               lead(t) OVER (PARTITION BY tenant, job_type ORDER BY t) AS next_t
        FROM ev
    ),
    hourly AS (
        SELECT tenant, job_type, date_trunc('hour', t) AS hour,
               sum(level * (epoch_us(next_t) - epoch_us(t)) / 1e6) AS busy_s,
               max(level) AS max_in_flight,
               max(level) FILTER (WHERE t = date_trunc('hour', t)) AS in_flight_at_start
        FROM lv WHERE t >= {_ts(start)} AND t < {horizon}
        GROUP BY ALL
    ),
    rolled AS (
        SELECT g.grain AS bucket_grain, date_trunc(g.grain, hour) AS bucket_start, tenant, job_type,
               sum(busy_s) AS busy_s, max(max_in_flight) AS max_in_flight,
               max(in_flight_at_start) FILTER (WHERE hour = date_trunc(g.grain, hour)) AS in_flight_at_start
        FROM hourly CROSS JOIN (VALUES ('hour'), ('day'), ('week')) g(grain)
        GROUP BY ALL
    )
    SELECT bucket_grain, bucket_start, tenant, job_type,
           (epoch_us(least(bucket_start + CASE bucket_grain WHEN 'hour' THEN INTERVAL 1 HOUR
                                                           WHEN 'day' THEN INTERVAL 1 DAY
                                                           ELSE INTERVAL 7 DAY END, {horizon}))
            - epoch_us(bucket_start)) / 1e6 AS observed_s,
           busy_s,
           busy_s / ((epoch_us(least(bucket_start + CASE bucket_grain WHEN 'hour' THEN INTERVAL 1 HOUR
                                                          WHEN 'day' THEN INTERVAL 1 DAY
                                                          ELSE INTERVAL 7 DAY END, {horizon}))
                      - epoch_us(bucket_start)) / 1e6) AS mean_in_flight,
           max_in_flight, in_flight_at_start
    FROM rolled WHERE busy_s > 0"""


def survival_sql(as_of: datetime, start: datetime, end: datetime, prepared: str | None = None) -> str:
    keys = "bucket_grain, bucket_start, tenant, job_type"
    return f"""
    WITH {_prelude(as_of, prepared)}, {GRAINS_CTE},
    s AS (SELECT tenant, job_type, started_at, elapsed_s AS d, end_kind = 'done' AS ev, end_kind
          FROM pj WHERE elapsed_s IS NOT NULL),
    b AS ({_by_bucket("s", "started_at", start, end)}),
    bt AS (SELECT {keys}, d, ev, end_kind FROM b
           UNION ALL SELECT bucket_grain, bucket_start, tenant, '*', d, ev, end_kind FROM b),
    counts AS (
        SELECT {keys}, count(*) AS jobs, count(*) FILTER (WHERE ev) AS events, count(*) FILTER (WHERE NOT ev) AS censored,
               count(*) FILTER (WHERE end_kind = 'running') AS censored_running,
               count(*) FILTER (WHERE end_kind = 'killed') AS censored_killed,
               count(*) FILTER (WHERE end_kind = 'error') AS censored_error,
               count(*) FILTER (WHERE end_kind = 'lost') AS censored_lost,
               quantile_cont(d, 0.5) FILTER (WHERE ev) AS completed_p50_s,
               quantile_cont(d, 0.9) FILTER (WHERE ev) AS completed_p90_s
        FROM bt GROUP BY ALL
    ),
    per_time AS (SELECT {keys}, d, count(*) FILTER (WHERE ev) AS events, count(*) AS leaving FROM bt GROUP BY ALL),
    risk AS (
        SELECT *, sum(leaving) OVER (PARTITION BY {keys} ORDER BY d DESC ROWS UNBOUNDED PRECEDING) AS at_risk
        FROM per_time
    ),
    curve AS (
        SELECT *, product(1 - events / at_risk) OVER (PARTITION BY {keys} ORDER BY d ROWS UNBOUNDED PRECEDING) AS sv
        FROM risk WHERE events > 0
    ),
    km AS (
        SELECT {keys}, min(d) FILTER (WHERE sv <= 0.5 + {KM_TOLERANCE}) AS km_median_s,
               min(d) FILTER (WHERE sv <= 0.1 + {KM_TOLERANCE}) AS km_p90_s
        FROM curve GROUP BY ALL
    )
    SELECT c.bucket_grain, c.bucket_start, c.tenant, c.job_type, jobs, events, censored, censored_running,
           censored_killed, censored_error, censored_lost, km.km_median_s, km.km_p90_s, completed_p50_s, completed_p90_s
    FROM counts c LEFT JOIN km USING (bucket_grain, bucket_start, tenant, job_type)"""


def eta_backtest_sql(as_of: datetime, start: datetime, end: datetime, prepared: str | None = None) -> str:
    """The ETA backtest: trailing KM curves per completion day, two ASOF joins, the blend, the errors."""
    tol = KM_TOLERANCE
    span = ETA_FULL_TRUST_PROGRESS - ETA_MIN_PROGRESS
    return f"""
    WITH {_prelude(as_of, prepared)}, {GRAINS_CTE},
    obs AS (
        SELECT j.tenant, j.job_id, j.job_type, j.completed_at, sn.progress,
               (epoch_us(sn.observed) - epoch_us(j.started_at)) / 1e6 AS elapsed_s,
               (epoch_us(j.completed_at) - epoch_us(sn.observed)) / 1e6 AS actual_s,
               date_trunc('day', j.completed_at) AS cutoff
        FROM (SELECT tenant, job_id, timezone('UTC', observed_at) AS observed, progress
              FROM job_snapshots WHERE status = 'IN_PROGRESS') sn
        JOIN pj j ON j.tenant = sn.tenant AND j.job_id = sn.job_id
        WHERE j.status = 'DONE' AND j.started_at IS NOT NULL
          AND j.completed_at >= {_ts(start)} AND j.completed_at < {_ts(end)}
          AND sn.observed >= j.started_at AND sn.observed < j.completed_at
    ),
    cutoffs AS (SELECT DISTINCT cutoff FROM obs),
    samples AS (
        SELECT c.cutoff, p.tenant, p.job_type,
               (epoch_us(least(p.run_end, c.cutoff)) - epoch_us(p.started_at)) / 1e6 AS d,
               p.end_kind = 'done' AND p.run_end <= c.cutoff AS ev
        FROM cutoffs c JOIN pj p
          ON p.started_at >= c.cutoff - INTERVAL {BASELINE_DAYS} DAY AND p.started_at < c.cutoff
        WHERE p.run_end IS NOT NULL AND least(p.run_end, c.cutoff) >= p.started_at
    ),
    per_time AS (SELECT cutoff, tenant, job_type, d, count(*) FILTER (WHERE ev) AS events, count(*) AS leaving
                 FROM samples GROUP BY ALL),
    risk AS (SELECT *, sum(leaving) OVER (PARTITION BY cutoff, tenant, job_type ORDER BY d DESC
                                          ROWS UNBOUNDED PRECEDING) AS at_risk FROM per_time),
    curve AS (SELECT cutoff, tenant, job_type, d AS t,
                     product(1 - events / at_risk) OVER (PARTITION BY cutoff, tenant, job_type ORDER BY d
                                                        ROWS UNBOUNDED PRECEDING) AS sv
              FROM risk WHERE events > 0),
    at_e AS (
        SELECT o.*, coalesce(c.sv, 1.0) / 2.0 AS target
        FROM obs o ASOF LEFT JOIN curve c
          ON o.cutoff = c.cutoff AND o.tenant = c.tenant AND o.job_type = c.job_type AND o.elapsed_s >= c.t
    ),
    star AS (
        SELECT a.*, c.t AS t_star
        FROM at_e a ASOF LEFT JOIN (SELECT *, -sv AS lvl FROM curve) c
          ON a.cutoff = c.cutoff AND a.tenant = c.tenant AND a.job_type = c.job_type
         AND -a.target - {tol} <= c.lvl
    ),
    est AS (
        SELECT *,
               CASE WHEN t_star > elapsed_s THEN t_star - elapsed_s END AS hist,
               CASE WHEN progress IS NOT NULL AND progress >= {ETA_MIN_PROGRESS} AND progress > 0
                    THEN elapsed_s * (100.0 - least(progress, 100)) / progress END AS prog,
               greatest(0.0, least(1.0, (progress - {ETA_MIN_PROGRESS}) / {span}.0)) AS trust
        FROM star
    ),
    blended AS (
        SELECT *,
               CASE WHEN prog IS NULL THEN hist WHEN hist IS NULL THEN prog
                    ELSE trust * prog + (1 - trust) * hist END AS remaining
        FROM est
    ),
    errs AS (
        SELECT tenant, job_type, job_id, completed_at, abs(remaining - actual_s) AS abs_err,
               abs(remaining - actual_s) / actual_s AS ape,
               abs(prog - actual_s) AS prog_err, abs(hist - actual_s) AS hist_err
        FROM blended
    ),
    b AS ({_by_bucket("errs", "completed_at", start, end)})
    SELECT bucket_grain, bucket_start, tenant, {TYPE_OR_ALL},
           count(DISTINCT job_id) AS jobs, count(*) AS observations, count(abs_err) AS predictions,
           avg(abs_err) AS mae_s, quantile_cont(ape, 0.5) AS median_ape, quantile_cont(ape, 0.9) AS p90_ape,
           avg(prog_err) AS mae_progress_only_s, avg(hist_err) AS mae_history_only_s
    FROM b
    GROUP BY GROUPING SETS ((bucket_grain, bucket_start, tenant, job_type), (bucket_grain, bucket_start, tenant))"""


REFERENCE_SQL: dict[str, Callable[[datetime, datetime, datetime, str | None], str]] = {
    "stats_durations": durations_sql,
    "stats_failure_rates": failure_rates_sql,
    "stats_type_mix": type_mix_sql,
    "stats_in_flight": in_flight_sql,
    "stats_survival": survival_sql,
    "stats_eta_backtest": eta_backtest_sql,
}


# ------------------------------------------------------------------------------------------------
# Synthetic archive

# (type, share of jobs, mean run seconds)
WORKLOAD = (
    ("EXTRACTION", 0.35, 60.0),
    ("EMBEDDING", 0.25, 150.0),
    ("SYNC", 0.05, 420.0),
    ("IMPORT", 0.10, 200.0),
    ("TRANSCRIPTION", 0.10, 90.0),
    ("GENERATION", 0.15, 25.0),
)
START = datetime(2024, 9, 2, tzinfo=UTC)  # a Monday


def _uniform(seed: int) -> str:
    # Deterministic pseudo-random in [0, 1) from the row number: reproducible runs.
    return f"(hash(i, {seed}) % 1000000007) / 1000000007.0"


def generate_archive(conn: duckdb.DuckDBPyConnection, jobs: int, snapshots: int, days: int) -> datetime:
    """Fill `jobs` and `job_snapshots` (contract columns) with a synthetic month; returns as_of."""
    as_of = START + timedelta(days=days)
    cases, bound = [], 0.0
    for name, share, _mean in WORKLOAD:
        bound += share
        cases.append(f"WHEN u_type < {bound:.4f} THEN '{name}'")
    type_case = "CASE " + " ".join(cases) + f" ELSE '{WORKLOAD[-1][0]}' END"
    mean_case = "CASE job_type " + " ".join(f"WHEN '{n}' THEN {m}" for n, _s, m in WORKLOAD) + " END"
    conn.sql(
        f"""
        CREATE OR REPLACE TABLE jobs AS
        WITH base AS (
            SELECT i, {_uniform(1)} AS u_created, {_uniform(2)} AS u_type, {_uniform(3)} AS u_wait,
                   {_uniform(4)} AS u_run, {_uniform(5)} AS u_fate, {_uniform(6)} AS u_size
            FROM range({jobs}) t(i)
        ),
        typed AS (SELECT *, {type_case} AS job_type FROM base),
        timed AS (
            SELECT *, {_ts(START)} + to_microseconds(CAST(u_created * {days} * 86400e6 AS BIGINT)) AS created,
                   CAST(-ln(1 - u_wait) * 8e6 AS BIGINT) AS wait_us,
                   CAST(-ln(1 - u_run) * {mean_case} * 1e6 AS BIGINT) AS run_us
            FROM typed
        ),
        fated AS (
            SELECT *, created + to_microseconds(wait_us) AS started,
                   created + to_microseconds(wait_us + run_us) AS ended,
                   CASE WHEN u_fate < 0.90 THEN 'DONE' WHEN u_fate < 0.97 THEN 'ERROR' ELSE 'KILLED' END AS fate
            FROM timed
        )
        SELECT 'acme' AS tenant, 'j' || i AS job_id, 'u' || (i % 997) AS user_id, 't' || (hash(i, 7) % 400000)
                   AS target_id, job_type,
               CASE WHEN started >= {_ts(as_of)} THEN 'PENDING' WHEN ended >= {_ts(as_of)} THEN 'IN_PROGRESS'
                    ELSE fate END AS status,
               status = 'KILLED' AS status_inferred,
               CASE WHEN status = 'DONE' THEN 100 WHEN status = 'IN_PROGRESS' THEN CAST(u_size * 100 AS INT) END
                   AS progress,
               CASE WHEN status = 'ERROR' THEN 'worker failed' END AS error,
               CASE job_type
                   WHEN 'EXTRACTION' THEN json_object('fileName', 'f.pdf', 'pageCount', 1 + CAST(u_size * 80 AS INT))
                   WHEN 'EMBEDDING' THEN json_object('totalChunks', 5 + CAST(u_size * 900 AS INT), 'model', 'm')
               END AS metadata,
               timezone('UTC', created) AS created_at,
               CASE WHEN status <> 'PENDING' THEN timezone('UTC', started) END AS started_at,
               CASE WHEN status IN ('DONE', 'ERROR') THEN timezone('UTC', ended) END AS completed_at,
               timezone('UTC', least(ended, {_ts(as_of)})) AS updated_at,
               timezone('UTC', created) AS first_seen_at,
               timezone('UTC', least(created + INTERVAL 23 HOUR, {_ts(as_of)}, ended + INTERVAL 90 SECOND))
                   AS last_seen_at,
               CASE WHEN status = 'KILLED' THEN timezone('UTC', ended) END AS vanished_at,
               's-last' AS last_sync_id
        FROM fated
        ORDER BY created
        """
    )
    per_job = max(snapshots / max(jobs, 1), 0.0)
    slots = max(1, int(per_job) + 1)
    keep = per_job / slots
    conn.sql(
        f"""
        CREATE OR REPLACE TABLE job_snapshots AS
        SELECT j.tenant, 's' || k AS sync_id, j.job_id,
               j.started_at + to_microseconds(CAST(
                   (epoch_us(coalesce(j.completed_at, j.updated_at)) - epoch_us(j.started_at)) * (k + 0.5) / {slots}
                   AS BIGINT)) AS observed_at,
               'IN_PROGRESS' AS status,
               CAST(least(99, 100.0 * (k + 0.5) / {slots} * (0.7 + 0.6 * (hash(j.job_id, k) % 1000) / 1000.0))
                    AS INT) AS progress,
               j.updated_at, NULL::VARCHAR AS error, NULL::JSON AS metadata, NULL::JSON AS payload
        FROM jobs j CROSS JOIN range({slots}) r(k)
        WHERE j.started_at IS NOT NULL AND (hash(j.job_id, k, 11) % 1000000) / 1000000.0 < {keep}
        """
    )
    return as_of


# ------------------------------------------------------------------------------------------------
# Workers (each in its own process: its ru_maxrss is its own peak)


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _time_steps(work: dict[str, Callable[[], object]]) -> dict[str, list[float]]:
    """One pass over the steps: [wall seconds, CPU seconds of the whole process (all threads)]."""
    times: dict[str, list[float]] = {}
    for name, step in work.items():
        wall, cpu = time.perf_counter(), time.process_time()
        step()
        times[name] = [time.perf_counter() - wall, time.process_time() - cpu]
    return times


def _scope(as_of: datetime) -> Any:
    from jobs_pipeline.analytics.buckets import Scope

    return Scope.whole_weeks(START.date(), (as_of - timedelta(microseconds=1)).date())


def export_worker(db: str, as_of: datetime, frames: str) -> dict[str, object]:
    """Read the frames as a refresh would (stats_store readers) and keep them as Arrow IPC files,
    so that the Polars worker's memory is Polars' own (DuckDB's buffer pool stays out of it)."""
    from jobs_pipeline.analytics.compute import read_window
    from jobs_pipeline.stats_store import read_jobs, read_snapshots

    conn = duckdb.connect(db, read_only=True)
    scope = _scope(as_of)
    began = time.perf_counter()
    jobs = read_jobs(conn, "acme", *read_window(scope), as_of)
    snapshots = read_snapshots(conn, "acme", scope)
    read_s = time.perf_counter() - began
    jobs.write_ipc(Path(frames) / "jobs.arrow")
    snapshots.write_ipc(Path(frames) / "snapshots.arrow")
    stored = conn.sql("SELECT count(*) FROM job_snapshots").fetchall()[0][0]
    return {
        "read_s": read_s,
        "jobs": jobs.height,
        "snapshots": snapshots.height,
        "stored_snapshots": stored,
        "peak_rss_mib": _peak_rss_mib(),
    }


def polars_worker(frames: str, as_of: datetime) -> dict[str, object]:
    from jobs_pipeline.analytics.compute import compute_statistics
    from jobs_pipeline.analytics.durations import duration_stats
    from jobs_pipeline.analytics.eta import eta_backtest
    from jobs_pipeline.analytics.failures import failure_rates
    from jobs_pipeline.analytics.in_flight import in_flight
    from jobs_pipeline.analytics.mix import type_mix
    from jobs_pipeline.analytics.prepare import prepare_jobs, with_categorical_keys
    from jobs_pipeline.analytics.survival import survival_stats

    scope = _scope(as_of)
    jobs = pl.read_ipc(Path(frames) / "jobs.arrow")
    snapshots = pl.read_ipc(Path(frames) / "snapshots.arrow")
    rss_after_read = _peak_rss_mib()
    holder: dict[str, pl.DataFrame] = {}

    def prepare() -> None:
        holder["jobs"] = with_categorical_keys(prepare_jobs(jobs, as_of))

    prepare()
    work: dict[str, Callable[[], object]] = {
        "prepare": prepare,
        "stats_durations": lambda: duration_stats(holder["jobs"], scope),
        "stats_failure_rates": lambda: failure_rates(holder["jobs"], scope),
        "stats_type_mix": lambda: type_mix(holder["jobs"], scope),
        "stats_in_flight": lambda: in_flight(holder["jobs"], scope, as_of),
        "stats_survival": lambda: survival_stats(holder["jobs"], scope),
        "stats_eta_backtest": lambda: eta_backtest(snapshots, holder["jobs"], scope),
    }
    times = _time_steps(work)
    holder.clear()
    full = _time_steps({"all tables": lambda: compute_statistics(jobs, snapshots, scope, as_of)})
    return {
        "times": times,
        "full": full["all tables"],
        "rss_after_read_mib": rss_after_read,
        "peak_rss_mib": _peak_rss_mib(),
    }


def duckdb_worker(db: str, as_of: datetime) -> dict[str, object]:
    from jobs_pipeline.analytics.buckets import Scope

    conn = duckdb.connect(db)  # not read-only: the prepared columns go to a temp table
    conn.sql("SET TimeZone = 'UTC'")
    scope = Scope.whole_weeks(START.date(), (as_of - timedelta(microseconds=1)).date())

    def materialise(query: str) -> pl.DataFrame:
        return conn.sql(query).pl()

    work: dict[str, Callable[[], object]] = {
        "prepare": partial(conn.sql, prepared_jobs_table_sql(as_of, "bench_pj")),
    }
    for name, sql in REFERENCE_SQL.items():
        work[name] = partial(materialise, sql(as_of, scope.start, scope.end, "bench_pj"))
    return {"times": _time_steps(work), "peak_rss_mib": _peak_rss_mib()}


# ------------------------------------------------------------------------------------------------
# Driver


def _run_worker(kind: str, db: str, as_of: datetime, frames: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.statistics", "--worker", kind, "--db", db]
    command += ["--as-of", as_of.isoformat(), "--frames", frames]
    output = subprocess.run(
        command, check=True, capture_output=True, text=True, cwd=Path(__file__).parents[1]
    )
    result: dict[str, Any] = json.loads(output.stdout.strip().splitlines()[-1])
    return result


def _medians(runs: list[dict[str, Any]]) -> dict[str, tuple[float, float]]:
    names = runs[0]["times"].keys()
    return {
        name: (
            statistics.median(r["times"][name][0] for r in runs),
            statistics.median(r["times"][name][1] for r in runs),
        )
        for name in names
    }


def _report(
    args: argparse.Namespace,
    generate_s: float,
    export: dict[str, Any],
    polars: list[dict[str, Any]],
    sql: list[dict[str, Any]],
) -> str:
    p_times, d_times = _medians(polars), _medians(sql)
    rows = []
    for name in p_times:
        (pw, pc), (dw, dc) = p_times[name], d_times[name]
        rows.append(f"| {name} | {pw:.2f} | {dw:.2f} | {pw / dw:.2f} | {pc:.2f} | {dc:.2f} | {pc / dc:.2f} |")
    pw = sum(v[0] for v in p_times.values())
    dw = sum(v[0] for v in d_times.values())
    pc = sum(v[1] for v in p_times.values())
    dc = sum(v[1] for v in d_times.values())
    rows.append(
        f"| **total** | **{pw:.2f}** | **{dw:.2f}** | **{pw / dw:.2f}** | **{pc:.2f}** | **{dc:.2f}** | **{pc / dc:.2f}** |"
    )
    read_s = export["read_s"]
    full_wall = statistics.median(r["full"][0] for r in polars)
    full_cpu = statistics.median(r["full"][1] for r in polars)
    p_rss = max(r["peak_rss_mib"] for r in polars)
    p_rss_read = max(r["rss_after_read_mib"] for r in polars)
    d_rss = max(r["peak_rss_mib"] for r in sql)
    load = os.getloadavg()
    return f"""# Statistics benchmark: Polars vs DuckDB SQL

`.venv/bin/python -m benchmarks.statistics --jobs {args.jobs} --snapshots {args.snapshots} --days {args.days}`
on {os.cpu_count()} cores (both engines use all of them), {datetime.now(UTC):%Y-%m-%d %H:%M} UTC;
load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (other work was running on the machine:
the CPU-seconds columns are the steadier comparison).

Synthetic archive: {export["jobs"]:,} jobs over {args.days} days and {export["stored_snapshots"]:,} snapshots, of
which the {export["snapshots"]:,} IN_PROGRESS snapshots of DONE jobs are read for the ETA backtest (archive
ready in {generate_s:.0f} s: generated, or reused with --archive). One full recompute: every
bucket (hour, day, ISO week) of the period, per type and '*'. Each engine ran {args.runs} times in its own
process, alternating (DuckDB, Polars, DuckDB, ...); medians. "prepare" is the derived-columns step (Polars:
`prepare_jobs`; SQL: the same columns into a temp table that the queries then read). The SQL is the tests'
cross-check (jobs_pipeline_tests/test_analytics_sql.py): both sides produce the same rows.

| figure | Polars wall (s) | DuckDB wall (s) | ratio | Polars CPU (s) | DuckDB CPU (s) | ratio |
|---|---:|---:|---:|---:|---:|---:|
{chr(10).join(rows)}

- Reading the frames from DuckDB (`stats_store.read_jobs` + `read_snapshots`, `.pl()`, once, in its own
  process): {read_s:.2f} s wall, peak RSS {export["peak_rss_mib"]:.0f} MiB (mostly DuckDB's buffer pool). Not in the
  table: the SQL side reads in place. The Polars worker loads those frames from Arrow IPC files, so its RSS
  is Polars' own.
- Every table of one refresh (`compute_statistics`: the above plus throughput, speed, failure spikes, slow
  jobs): {full_wall:.2f} s wall, {full_cpu:.2f} s CPU.
- Peak RSS (ru_maxrss of each worker process, worst run): Polars {p_rss:.0f} MiB (of which {p_rss_read:.0f} MiB
  once the input frames were loaded); DuckDB {d_rss:.0f} MiB.
- Goals: ratio <= 1.5 on the total; Polars peak <= 3 GB.
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=3_000_000)
    parser.add_argument("--snapshots", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--archive", type=Path, help="keep the synthetic archive in this DuckDB file (reused when it exists)"
    )
    parser.add_argument("--worker", choices=["export", "polars", "duckdb"], help=argparse.SUPPRESS)
    parser.add_argument("--frames", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--as-of", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        as_of = datetime.fromisoformat(args.as_of)
        if args.worker == "export":
            result = export_worker(args.db, as_of, args.frames)
        elif args.worker == "polars":
            result = polars_worker(args.frames, as_of)
        else:
            result = duckdb_worker(args.db, as_of)
        print(json.dumps(result))
        return

    with tempfile.TemporaryDirectory(prefix="bench-stats-") as tmp:
        db = str(args.archive or Path(tmp) / "archive.duckdb")
        began = time.perf_counter()
        if args.archive is not None and args.archive.exists():
            as_of = START + timedelta(days=args.days)  # reuse: generated earlier with the same --days
        else:
            with duckdb.connect(db) as conn:
                conn.sql("SET TimeZone = 'UTC'")
                as_of = generate_archive(conn, args.jobs, args.snapshots, args.days)
        generate_s = time.perf_counter() - began
        print(f"archive ready in {generate_s:.1f} s", file=sys.stderr)
        export = _run_worker("export", db, as_of, tmp)
        print(f"frames read: {export}", file=sys.stderr)
        sql: list[dict[str, Any]] = []
        polars: list[dict[str, Any]] = []
        for run in range(args.runs):
            sql.append(_run_worker("duckdb", db, as_of, tmp))
            print(f"run {run + 1} duckdb: {sql[-1]}", file=sys.stderr)
            polars.append(_run_worker("polars", db, as_of, tmp))
            print(f"run {run + 1} polars: {polars[-1]}", file=sys.stderr)
    report = _report(args, generate_s, export, polars, sql)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
