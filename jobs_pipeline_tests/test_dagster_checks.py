"""The asset checks' verdicts on a hand-made archive (the real schema, in memory): each check must
pass on clean rows and fail, with the right severity, on exactly the rows that break its rule."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import duckdb
import pytest

from jobs_pipeline.archive import migrate
from jobs_pipeline.defs.checks import (
    duplicates_result,
    freshness_result,
    ordered_result,
    progress_result,
    stuck_jobs,
    stuck_result,
)

AS_OF = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SYNC = "sync-1"


@pytest.fixture
def conn() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect(":memory:")
    migrate(connection)
    connection.execute("SET TimeZone = 'UTC'")
    add_sync(connection, "acme", AS_OF)
    yield connection
    connection.close()


def add_sync(
    conn: duckdb.DuckDBPyConnection, tenant: str, observed_at: datetime, sync_id: str = SYNC
) -> None:
    conn.execute(
        "INSERT INTO hot.sync_runs (tenant, sync_id, started_at, finished_at, observed_at, requests, pages, jobs_seen,"
        " jobs_new, jobs_changed, jobs_vanished, coverage_complete, gaps, status, error, rate_limited, rejects)"
        " VALUES (?, ?, ?, ?, ?, 1, 1, 0, 0, 0, 0, TRUE, '[]', 'ok', NULL, 0, 0)",
        [tenant, sync_id, observed_at, observed_at, observed_at],
    )


def add_job(
    conn: duckdb.DuckDBPyConnection,
    job_id: str,
    *,
    tenant: str = "acme",
    job_type: str = "EXTRACTION",
    status: str = "DONE",
    created: datetime,
    started: datetime | None = None,
    completed: datetime | None = None,
    progress: int | None = None,
) -> None:
    last_seen = AS_OF if status == "IN_PROGRESS" else (completed or created)
    conn.execute(
        "INSERT INTO hot.jobs (tenant, job_id, job_type, status, status_inferred, progress, created_at, started_at,"
        " completed_at, updated_at, first_seen_at, last_seen_at, last_sync_id)"
        " VALUES (?, ?, ?, ?, FALSE, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            tenant,
            job_id,
            job_type,
            status,
            progress,
            created,
            started,
            completed,
            last_seen,
            created,
            last_seen,
            SYNC,
        ],
    )


def add_done_runs(
    conn: duckdb.DuckDBPyConnection, count: int, seconds: float, job_type: str = "EXTRACTION"
) -> None:
    """`count` DONE runs of `seconds` each, completed during the 6 hours before AS_OF."""
    for i in range(count):
        started = AS_OF - timedelta(hours=6) + timedelta(minutes=10 * i)
        add_job(
            conn,
            f"done-{job_type}-{i}",
            job_type=job_type,
            created=started - timedelta(seconds=5),
            started=started,
            completed=started + timedelta(seconds=seconds),
        )


def metadata(result: dg.AssetCheckResult, name: str) -> Any:
    value = result.metadata[name]
    return value.value if isinstance(value, dg.MetadataValue) else value


def test_clean_archive_passes_every_check(conn: duckdb.DuckDBPyConnection) -> None:
    add_done_runs(conn, 25, seconds=60)
    for result in (duplicates_result(conn), ordered_result(conn), progress_result(conn), stuck_result(conn)):
        assert result.passed, result.check_name


def test_duplicates_in_one_sync_and_across_tenants_are_errors(conn: duckdb.DuckDBPyConnection) -> None:
    add_job(conn, "j1", created=AS_OF - timedelta(hours=1))
    add_job(conn, "j1", tenant="beta", created=AS_OF - timedelta(hours=1))
    for _ in range(2):
        conn.execute(
            "INSERT INTO hot.job_snapshots (tenant, sync_id, job_id, observed_at, status, updated_at, payload)"
            " VALUES ('acme', ?, 'j2', ?, 'DONE', ?, '{}')",
            [SYNC, AS_OF, AS_OF],
        )
    result = duplicates_result(conn)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    assert metadata(result, "duplicates_across_tenants") == 1
    assert metadata(result, "duplicates_within_one_sync") == 1
    assert metadata(result, "duplicates_within_tenant") == 0
    assert "j1" in metadata(result, "sample_across_tenants")


def test_disordered_timestamps_warn_and_name_the_jobs(conn: duckdb.DuckDBPyConnection) -> None:
    created = AS_OF - timedelta(hours=2)
    add_job(conn, "ok", created=created, started=created, completed=created + timedelta(minutes=1))
    add_job(conn, "early-start", created=created, started=created - timedelta(seconds=1))
    add_job(conn, "early-end", created=created, started=created, completed=created - timedelta(seconds=1))
    result = ordered_result(conn)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert metadata(result, "disordered_jobs") == 2
    sample = metadata(result, "sample")
    assert "early-start" in sample and "early-end" in sample and "| ok |" not in sample


def test_progress_out_of_range_is_an_error(conn: duckdb.DuckDBPyConnection) -> None:
    add_job(conn, "fine", created=AS_OF, progress=100)
    add_job(conn, "over", created=AS_OF, progress=101)
    result = progress_result(conn)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    assert metadata(result, "out_of_range_rows") == 1


def test_stuck_means_running_past_twice_the_trailing_p99(conn: duckdb.DuckDBPyConnection) -> None:
    add_done_runs(conn, 25, seconds=60)  # p99 = 60 s
    for job_id, running_for in (("stuck", 121), ("slow-but-fine", 119)):
        started = AS_OF - timedelta(seconds=running_for)
        add_job(conn, job_id, status="IN_PROGRESS", created=started - timedelta(seconds=1), started=started)
    frame = stuck_jobs(conn, "acme")
    assert frame["job_id"].to_list() == ["stuck"]
    assert frame["p99_s"].to_list() == [pytest.approx(60.0)]
    result = stuck_result(conn)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert metadata(result, "stuck_jobs") == 1


def test_no_verdict_on_stuck_jobs_without_a_baseline(conn: duckdb.DuckDBPyConnection) -> None:
    add_done_runs(conn, 19, seconds=60)  # fewer than MIN_BASELINE_RUNS
    started = AS_OF - timedelta(hours=3)
    add_job(conn, "long", status="IN_PROGRESS", created=started, started=started)
    assert stuck_jobs(conn, "acme").is_empty()
    assert stuck_result(conn).passed


def test_freshness_limit_is_twice_the_interval_and_covers_configured_tenants(
    conn: duckdb.DuckDBPyConnection,
) -> None:
    fresh = freshness_result(conn, ["acme"], 300, AS_OF + timedelta(seconds=599))
    assert fresh.passed
    stale = freshness_result(conn, ["acme"], 300, AS_OF + timedelta(seconds=601))
    assert not stale.passed and stale.severity == dg.AssetCheckSeverity.ERROR
    never_synced = freshness_result(conn, ["acme", "beta"], 300, AS_OF)
    assert not never_synced.passed
    assert metadata(never_synced, "lag_seconds") == {"acme": 0.0, "beta": None}
