"""Sealed history end to end: real syncs over HTTP against the twin, on a stepped clock that crosses
several UTC days, into real files (hot store + Parquet day files + published copy).

What must hold: each (tenant, table, day) is sealed exactly once, into one file; every row stays
reachable through the analyst views with nothing duplicated between hot and sealed data; the
history matches the twin's ground truth; a sync killed at any step of sealing recovers; an analyst
session opened before a seal keeps its answer; the cookbook's queries run on a sealed archive; the
Parquet folders are readable without DuckDB.
"""

from __future__ import annotations

import random
import re
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.dataset as ds
import pytest

from benchmarks.soak import (
    KillPlan,
    KillRow,
    SoakTwin,
    archive_invariant_violations,
    archive_state,
    archive_truth_violations,
    final_state_violations,
    kill_one,
    soak_twin,
    state_differences,
)
from jobs_pipeline.archive import ArchiveError, ArchivePaths, apply_capture, open_for_analysis, open_writer
from jobs_pipeline.archive.layout import SEALED_TABLE_NAMES, Family, day_start, seal_through
from jobs_pipeline.stats_store import refresh_statistics
from jobs_pipeline_tests.test_archive_builders import make_job, make_result

COOKBOOK = Path(__file__).resolve().parents[1] / "docs" / "analytics-cookbook.md"


def sync_for(soak: SoakTwin, hours: float, every_minutes: float = 90) -> None:
    for _ in range(int(hours * 60 / every_minutes)):
        soak.sync()
        soak.advance(minutes=every_minutes)


def manifest(db: Path) -> list[tuple[str, str, object, int, str]]:
    with closing(open_for_analysis(db)) as conn:
        return conn.execute(
            "SELECT tenant, table_name, day, rows, path FROM sealed_partitions ORDER BY ALL"
        ).fetchall()


def store_counts(db: Path) -> dict[str, int]:
    with closing(duckdb.connect(str(ArchivePaths.for_db(db).store), read_only=True)) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM hot.{t}").fetchall()[0][0] for t in SEALED_TABLE_NAMES}


@pytest.fixture(scope="module")
def sealed_archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SoakTwin]:
    """Four days of syncs every 90 twin-minutes: at least two days of every family sealed."""
    db = tmp_path_factory.mktemp("sealed") / "archive.duckdb"
    with soak_twin(db, jobs_per_day=600) as soak:
        sync_for(soak, hours=4 * 24)
        soak.sync()
        yield db, soak


def test_every_day_is_sealed_once_and_nothing_is_duplicated(sealed_archive: tuple[Path, SoakTwin]) -> None:
    db, soak = sealed_archive
    last = soak.clock.now()
    rows = manifest(db)
    days = {(table, day) for _, table, day, _, _ in rows}
    assert len(days) == len(rows)  # one file per table and day
    job_days = sorted({day for _, table, day, _, _ in rows if table == "jobs"})
    log_days = sorted({day for _, table, day, _, _ in rows if table == "sync_runs"})
    assert len(job_days) >= 2 and len(log_days) >= 3
    assert job_days[-1] == seal_through(Family.JOB, last) and log_days[-1] == seal_through(Family.LOG, last)
    root = ArchivePaths.for_db(db).sealed_root
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*.parquet")) == sorted(r[4] for r in rows)
    assert [p for p in root.rglob("*") if p.is_file() and not p.name.endswith(".parquet")] == []

    hot = store_counts(db)
    with closing(open_for_analysis(db)) as conn:
        for table in SEALED_TABLE_NAMES:
            total = conn.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
            sealed = sum(r[3] for r in rows if r[1] == table)
            assert total == hot[table] + sealed, table
        dupes = conn.execute(
            "SELECT count(*) FROM (SELECT tenant, job_id FROM jobs GROUP BY ALL HAVING count(*) > 1)"
        ).fetchall()
        assert dupes == [(0,)]
        # Sealed jobs are gone from the hot store, hot jobs are all younger than the sealed horizon.
        (oldest_hot,) = (
            duckdb.connect(str(ArchivePaths.for_db(db).store), read_only=True)
            .execute("SELECT min(created_at) FROM hot.jobs")
            .fetchall()[0]
        )
        assert oldest_hot.date() > job_days[-1]
    assert archive_invariant_violations(db) == []
    truth = soak.truth()
    assert archive_truth_violations(db, truth) == []
    assert final_state_violations(db, truth) == []


def test_the_views_keep_the_tables_contract(sealed_archive: tuple[Path, SoakTwin]) -> None:
    db, _ = sealed_archive
    with closing(open_for_analysis(db)) as conn:
        kinds = dict(
            conn.execute(
                "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = 'main'"
            ).fetchall()
        )
        assert all(kinds[t] == "VIEW" for t in SEALED_TABLE_NAMES)
        undocumented = conn.execute(
            "SELECT table_name, column_name FROM duckdb_columns() WHERE schema_name = 'main' "
            "AND table_name IN ('jobs', 'job_snapshots', 'job_status_changes', 'sync_runs', 'rejected_records') "
            "AND comment IS NULL"
        ).fetchall()
        assert undocumented == []
        # Sealed rows come back with the hot table's types (JSON stays JSON, instants stay TIMESTAMPTZ).
        types = conn.execute(
            "SELECT typeof(payload), typeof(observed_at), typeof(metadata) FROM job_snapshots "
            "WHERE job_id IN (SELECT job_id FROM jobs ORDER BY created_at LIMIT 1) LIMIT 1"
        ).fetchall()
        assert types == [("JSON", "TIMESTAMP WITH TIME ZONE", "JSON")]


def test_the_sealed_folders_are_readable_without_duckdb(sealed_archive: tuple[Path, SoakTwin]) -> None:
    db, _ = sealed_archive
    root = ArchivePaths.for_db(db).sealed_root
    rows = manifest(db)
    sealed_jobs = sum(r[3] for r in rows if r[1] == "jobs")
    frame = pl.read_parquet(root / "jobs" / "**" / "*.parquet", hive_partitioning=True)
    assert frame.height == sealed_jobs
    assert {"tenant", "day", "job_id", "created_at", "status"} <= set(frame.columns)
    assert frame["tenant"].unique().to_list() == ["default"]
    assert (frame["created_at"].dt.date() == frame["day"]).all()
    dataset = ds.dataset(root / "job_snapshots", format="parquet", partitioning="hive")
    assert dataset.count_rows() == sum(r[3] for r in rows if r[1] == "job_snapshots")


def test_cookbook_queries_run_on_a_sealed_archive(
    sealed_archive: tuple[Path, SoakTwin], tmp_path: Path
) -> None:
    db, _ = sealed_archive
    with open_writer(db) as conn:
        refresh_statistics(conn)
    queries = re.findall(r"```sql\n(.*?)```", COOKBOOK.read_text(encoding="utf-8"), flags=re.S)
    assert len(queries) >= 4
    with closing(open_for_analysis(db)) as conn:
        for query in queries:
            conn.sql(query).fetchall()
        # Statistics cover the sealed days too: every sealed job day has its daily row.
        sealed_days = {r[2] for r in manifest(db) if r[1] == "jobs"}
        stats_days = {
            day
            for (day,) in conn.execute(
                "SELECT DISTINCT day FROM daily_run_time WHERE job_type = '*'"
            ).fetchall()
        }
        assert sealed_days <= stats_days


def test_a_session_opened_before_a_seal_keeps_its_answer(tmp_path: Path) -> None:
    db = tmp_path / "archive.duckdb"
    query = "SELECT count(*), sum(hash(job_id, status, updated_at)) FROM jobs"
    with soak_twin(db, jobs_per_day=500) as soak:
        sync_for(soak, hours=26)
        before_seal = len(manifest(db))
        analyst = open_for_analysis(db)
        answer = analyst.execute(query).fetchall()
        sync_for(soak, hours=30)  # crosses a UTC day: more days sealed under the open session
        assert len(manifest(db)) > before_seal
        assert analyst.execute(query).fetchall() == answer
        analyst.close()
        with closing(open_for_analysis(db)) as fresh:
            assert fresh.execute(query).fetchall() != answer


def test_syncs_killed_while_sealing_recover(tmp_path: Path) -> None:
    rng = random.Random(20261204)
    with soak_twin(tmp_path / "archive.duckdb", jobs_per_day=400) as soak:
        sync_for(soak, hours=20)
        rows: dict[str, KillRow] = {}
        for point in ("seal", "views", "seal"):
            # Cross a day boundary so that the next sync has days to seal.
            soak.advance(hours=24)
            row = rows.setdefault(point, KillRow())
            outcome = kill_one(soak, KillPlan(point), row, rng)  # SIGKILL as soon as the phase begins
            # Killed after sealing began; usually inside the sync's transaction, but on a loaded
            # machine the child may get a little further: what matters is what the archive shows.
            assert outcome.killed and point in outcome.phases, outcome
            assert row.problems == [], row.problems
        days = [(table, day) for _, table, day, _, _ in manifest(soak.db)]
        assert len(days) == len(set(days)) and len(days) >= 3
        truth = soak.truth()
        assert archive_truth_violations(soak.db, truth) == []


def test_sealed_history_cannot_be_written(tmp_path: Path) -> None:
    db = tmp_path / "archive.duckdb"
    with soak_twin(db, jobs_per_day=300) as soak:
        sync_for(soak, hours=60, every_minutes=240)
        soak.sync()
        now = soak.clock.now()
    sealed_log = max(r[2] for r in manifest(db) if r[1] == "sync_runs")
    sealed_job_day = max(r[2] for r in manifest(db) if r[1] == "jobs")
    before = archive_state(db)
    # A server clock that says "the day before yesterday": refused whole, nothing written.
    with open_writer(db) as conn, pytest.raises(ArchiveError, match="sealed history"):
        apply_capture(
            conn, make_result("late", day_start(sealed_log) + timedelta(hours=12), [], tenant="default")
        )
    assert state_differences(before, archive_state(db)) == []
    # A job created on a sealed day (the API cannot return it): rejected with its reason, not merged.
    ghost = make_job("ghost", "DONE", created=day_start(sealed_job_day) + timedelta(hours=1))
    with open_writer(db) as conn:
        summary = apply_capture(
            conn, make_result("now", now + timedelta(minutes=1), [ghost], tenant="default")
        )
    assert (summary.rejects, summary.jobs_new) == (1, 0)
    with closing(open_for_analysis(db)) as conn:
        assert conn.execute("SELECT count(*) FROM jobs WHERE job_id = 'ghost'").fetchall() == [(0,)]
        (reason,) = conn.execute("SELECT reason FROM rejected_records WHERE job_id = 'ghost'").fetchall()[0]
        assert "sealed day" in reason
