"""Slow jobs, failure spikes, size-normalised speed and retry candidates vs independent DuckDB SQL."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import duckdb
import polars as pl
import pytest

from jobs_pipeline.analytics.anomalies import failure_spikes, slow_jobs
from jobs_pipeline.analytics.buckets import BUCKET_KEYS, Scope
from jobs_pipeline.analytics.compute import read_window
from jobs_pipeline.analytics.conventions import SPIKE_Z
from jobs_pipeline.analytics.prepare import prepare_jobs
from jobs_pipeline.analytics.retries import retry_candidates
from jobs_pipeline.analytics.speed import size_speed
from jobs_pipeline.analytics.stats import normal_upper_tail
from jobs_pipeline.stats_store import ensure_statistics_schema, read_jobs
from jobs_pipeline_tests.test_analytics_fixtures import (
    BASE,
    Archive,
    assert_frames_close,
    fresh_connection,
    job_row,
    random_archive,
)

AS_OF = BASE + timedelta(days=12, hours=5)
UTC_DAY = "CAST(timezone('UTC', {}) AS DATE)"


def _with_error_burst(archive: Archive) -> Archive:
    """Forty EXTRACTION failures in one hour of day 10: a spike by any standard."""
    start = BASE + timedelta(days=10, hours=14)
    for i in range(40):
        created = start + timedelta(seconds=60 * i)
        archive.jobs.append(
            job_row(
                f"burst{i:02d}",
                "EXTRACTION",
                "ERROR",
                created,
                started_at=created + timedelta(seconds=1),
                completed_at=created + timedelta(seconds=30),
            )
        )
    return archive


@pytest.fixture(scope="module", params=[11, 12])
def archive_conn(request: pytest.FixtureRequest) -> duckdb.DuckDBPyConnection:
    archive = _with_error_burst(random_archive(seed=request.param, n_jobs=3_000, days=12, as_of=AS_OF))
    return fresh_connection(archive)


def _prepared(conn: duckdb.DuckDBPyConnection, scope: Scope) -> pl.DataFrame:
    start, end = read_window(scope)
    return prepare_jobs(read_jobs(conn, "acme", start, end, AS_OF), AS_OF)


def test_slow_jobs_match_sql(archive_conn: duckdb.DuckDBPyConnection) -> None:
    days = [(BASE + timedelta(days=d)).date() for d in (2, 8, 9, 11)]
    scope = Scope.for_days(days)
    actual = slow_jobs(_prepared(archive_conn, scope), scope)
    expected = archive_conn.sql(
        f"""
        WITH runs AS (
            SELECT tenant, job_id, job_type, status, timezone('UTC', started_at) AS started_at,
                   timezone('UTC', completed_at) AS completed_at,
                   (epoch_us(completed_at) - epoch_us(started_at)) / 1e6 AS run_time_s,
                   {UTC_DAY.format("completed_at")} AS day
            FROM jobs WHERE status IN ('DONE', 'ERROR') AND completed_at >= started_at
        ),
        days AS (SELECT unnest($days::DATE[]) AS day),
        base AS (
            SELECT d.day, r.tenant, r.job_type, count(*) AS n, quantile_cont(r.run_time_s, 0.99) AS p99
            FROM days d JOIN runs r ON r.status = 'DONE' AND r.day >= d.day - 7 AND r.day < d.day
            GROUP BY ALL
        ),
        judged AS (
            SELECT r.tenant, r.day AS completed_day, r.job_id, r.job_type, r.status, r.started_at, r.completed_at,
                   r.run_time_s, CASE WHEN b.n >= 20 THEN b.p99 END AS trailing_p99_s,
                   coalesce(b.n, 0) AS trailing_runs,
                   CASE r.job_type WHEN 'EXTRACTION' THEN 300 WHEN 'EMBEDDING' THEN 600 WHEN 'SYNC' THEN 1800
                        WHEN 'IMPORT' THEN 900 WHEN 'TRANSCRIPTION' THEN 300 WHEN 'GENERATION' THEN 120 END::DOUBLE
                        AS vendor_max_s
            FROM runs r JOIN days d ON r.day = d.day
            LEFT JOIN base b ON b.day = r.day AND b.tenant = r.tenant AND b.job_type = r.job_type
        )
        SELECT *, run_time_s > trailing_p99_s AS over_trailing_p99, run_time_s > vendor_max_s AS over_vendor_max
        FROM judged
        WHERE coalesce(run_time_s > trailing_p99_s, FALSE) OR coalesce(run_time_s > vendor_max_s, FALSE)
        """,
        params={"days": days},
    ).pl()
    assert expected.filter(pl.col("over_trailing_p99")).height > 0
    assert expected.filter(pl.col("over_vendor_max")).height > 0
    assert_frames_close(actual, expected, ["tenant", "completed_day", "job_id"])


def test_failure_spikes_match_sql(archive_conn: duckdb.DuckDBPyConnection) -> None:
    scope = Scope.for_days([(BASE + timedelta(days=d)).date() for d in (3, 10)])
    actual = failure_spikes(_prepared(archive_conn, scope), scope)
    start, end = scope.start, scope.end
    expected = archive_conn.sql(
        """
        WITH f AS (
            SELECT tenant, job_type, status = 'ERROR' AS is_error,
                   timezone('UTC', coalesce(completed_at, updated_at)) AS ts
            FROM jobs WHERE status IN ('DONE', 'ERROR')
        ),
        fx AS (SELECT tenant, job_type, is_error, ts FROM f UNION ALL SELECT tenant, '*', is_error, ts FROM f),
        buckets AS (
            SELECT DISTINCT g.grain AS bucket_grain, date_trunc(g.grain, ts) AS bucket_start, tenant, job_type
            FROM fx CROSS JOIN (VALUES ('hour'), ('day'), ('week')) g(grain)
            WHERE ts >= $start AND ts < $end
        ),
        counted AS (
            SELECT b.*,
                   (SELECT count(*) FILTER (WHERE is_error) FROM fx WHERE fx.tenant = b.tenant AND fx.job_type = b.job_type
                      AND fx.ts >= b.bucket_start AND fx.ts < b.bucket_start + CASE b.bucket_grain
                          WHEN 'hour' THEN INTERVAL 1 HOUR WHEN 'day' THEN INTERVAL 1 DAY ELSE INTERVAL 7 DAY END) AS k,
                   (SELECT count(*) FROM fx WHERE fx.tenant = b.tenant AND fx.job_type = b.job_type
                      AND fx.ts >= b.bucket_start AND fx.ts < b.bucket_start + CASE b.bucket_grain
                          WHEN 'hour' THEN INTERVAL 1 HOUR WHEN 'day' THEN INTERVAL 1 DAY ELSE INTERVAL 7 DAY END) AS n,
                   (SELECT count(*) FILTER (WHERE is_error) FROM fx WHERE fx.tenant = b.tenant
                      AND fx.job_type = b.job_type AND fx.ts >= b.bucket_start - INTERVAL 7 DAY
                      AND fx.ts < b.bucket_start) AS e,
                   (SELECT count(*) FROM fx WHERE fx.tenant = b.tenant AND fx.job_type = b.job_type
                      AND fx.ts >= b.bucket_start - INTERVAL 7 DAY AND fx.ts < b.bucket_start) AS f
            FROM buckets b
        )
        SELECT bucket_grain, bucket_start, tenant, job_type, k AS errors, n AS finished, k / n AS error_rate,
               e AS baseline_errors, f AS baseline_finished, CASE WHEN f > 0 THEN e / f END AS baseline_rate,
               CASE WHEN f >= 20 THEN (k - 0.5 - n * ((e + 0.5) / (f + 1)))
                    / sqrt(n * ((e + 0.5) / (f + 1)) * (1 - (e + 0.5) / (f + 1))) END AS z_score
        FROM counted
        """,
        params={"start": start, "end": end},
    ).pl()
    owned = expected.join(
        scope.buckets.select("bucket_grain", "bucket_start"), on=["bucket_grain", "bucket_start"]
    )
    assert_frames_close(
        actual.drop("p_value", "is_spike"),
        owned.select(actual.drop("p_value", "is_spike", "coverage").columns),
        list(BUCKET_KEYS),
    )
    spikes = actual.filter(pl.col("is_spike"))
    burst_hour = BASE + timedelta(days=10, hours=14)
    assert (
        spikes.filter(
            (pl.col("bucket_grain") == "hour")
            & (pl.col("job_type") == "EXTRACTION")
            & (pl.col("bucket_start") == burst_hour.replace(tzinfo=None))
        ).height
        == 1
    )
    assert (spikes["z_score"] >= SPIKE_Z).all() and (spikes["errors"] >= 3).all()


def test_normal_upper_tail_matches_erfc() -> None:
    zs = [-4.0, -1.5, -0.1, 0.0, 0.3, 1.0, 1.959963984540054, 3.09, 5.0, 8.0]
    got = pl.DataFrame({"z": zs}).select(normal_upper_tail(pl.col("z")))["z"].to_list()
    for z, p in zip(zs, got, strict=True):
        assert p == pytest.approx(0.5 * math.erfc(z / math.sqrt(2)), abs=1e-7)


def test_size_speed_matches_sql(archive_conn: duckdb.DuckDBPyConnection) -> None:
    scope = Scope.whole_weeks(BASE.date(), AS_OF.date())
    actual = size_speed(_prepared(archive_conn, scope), scope)
    expected = archive_conn.sql(
        """
        WITH s AS (
            SELECT tenant, job_type, timezone('UTC', completed_at) AS ts,
                   (epoch_us(completed_at) - epoch_us(started_at)) / 1e6 AS run_time_s,
                   CASE job_type WHEN 'EXTRACTION' THEN TRY_CAST(json_extract_string(metadata, '$.pageCount') AS DOUBLE)
                                 WHEN 'EMBEDDING' THEN TRY_CAST(json_extract_string(metadata, '$.totalChunks') AS DOUBLE)
                   END AS units
            FROM jobs WHERE status = 'DONE' AND completed_at >= started_at
        )
        SELECT g.grain AS bucket_grain, date_trunc(g.grain, ts) AS bucket_start, tenant, job_type,
               CASE job_type WHEN 'EXTRACTION' THEN 'page' ELSE 'chunk' END AS unit,
               count(*) AS jobs, sum(units) AS units, sum(run_time_s) AS run_time_s,
               sum(run_time_s) / sum(units) AS s_per_unit,
               quantile_cont(run_time_s / units, 0.5) AS p50_s_per_unit,
               quantile_cont(run_time_s / units, 0.9) AS p90_s_per_unit
        FROM s CROSS JOIN (VALUES ('hour'), ('day'), ('week')) g(grain)
        WHERE units > 0 AND ts >= $start AND ts < $end
        GROUP BY ALL
        """,
        params={"start": scope.start, "end": scope.end},
    ).pl()
    assert expected.height > 0
    assert_frames_close(actual, expected, list(BUCKET_KEYS))


def test_retry_candidates_match_the_view(archive_conn: duckdb.DuckDBPyConnection) -> None:
    ensure_statistics_schema(archive_conn)
    frame = archive_conn.sql("SELECT * FROM jobs").pl()
    actual = retry_candidates(frame)
    expected = archive_conn.sql("SELECT * FROM retry_candidates").pl()
    assert expected.height > 0
    assert_frames_close(actual, expected, ["tenant", "job_id"])


def test_retry_candidates_hand_case() -> None:
    t0 = datetime(2024, 10, 7, 8)
    rows = [
        # target a: failed, then succeeded -> not a candidate
        ("a1", "a", "EXTRACTION", "ERROR", t0),
        ("a2", "a", "EXTRACTION", "DONE", t0 + timedelta(minutes=5)),
        # target b: succeeded before the failure -> candidate, and a later failure too
        ("b1", "b", "EXTRACTION", "DONE", t0),
        ("b2", "b", "EXTRACTION", "ERROR", t0 + timedelta(minutes=1)),
        ("b3", "b", "EXTRACTION", "ERROR", t0 + timedelta(minutes=2)),
        # target c: later success of another type does not count
        ("c1", "c", "EMBEDDING", "ERROR", t0),
        ("c2", "c", "EXTRACTION", "DONE", t0 + timedelta(minutes=1)),
    ]
    frame = pl.DataFrame(
        [
            {
                "tenant": "x",
                "job_id": j,
                "target_id": t,
                "job_type": ty,
                "status": s,
                "created_at": c,
                "completed_at": c,
                "error": None,
            }
            for j, t, ty, s, c in rows
        ]
    )
    result = retry_candidates(frame)
    assert result["job_id"].to_list() == ["c1", "b2", "b3"]
    later = dict(zip(result["job_id"], result["later_attempts"], strict=True))
    assert later == {"b2": 1, "b3": 0, "c1": 0}


def test_speed_ignores_missing_and_non_positive_sizes() -> None:
    t0 = datetime(2024, 10, 7, 8)
    frame = pl.DataFrame(
        {
            "tenant": ["x"] * 4,
            "job_type": ["EXTRACTION", "EXTRACTION", "EXTRACTION", "EMBEDDING"],
            "status": ["DONE"] * 4,
            "completed_at": [t0] * 4,
            "run_time_s": [10.0, 10.0, 10.0, 30.0],
            "metadata": [
                '{"pageCount": 5}',
                '{"pageCount": 0}',
                '{"fileName": "x"}',
                '{"totalChunks": "15"}',
            ],
        }
    )
    scope = Scope.for_days([t0.date()])
    result = size_speed(frame, scope).filter(pl.col("bucket_grain") == "day").sort("job_type")
    assert result.select("job_type", "unit", "jobs", "s_per_unit").rows() == [
        ("EMBEDDING", "chunk", 1, 2.0),
        ("EXTRACTION", "page", 1, 2.0),
    ]
