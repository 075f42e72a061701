"""Upgrading end to end: an archive written by schema version 1 (jobs_pipeline_tests/fixtures/
archive_v1.sql), then `jobs-pipeline sync` against the twin: every v1 row is still there, the new data
is added, and the archive keeps its invariants. Also when the upgrading sync is killed mid-way.
test_archive_migrations.py covers the migration step itself.
"""

from __future__ import annotations

import random
from contextlib import closing
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from benchmarks.soak import (
    KEY,
    KillRow,
    invariant_violations,
    kill_one,
    random_plan,
    soak_twin,
    truth_violations,
)
from jobs_pipeline.archive import SCHEMA_VERSION, ArchivePaths, open_for_analysis
from jobs_pipeline.cli.main import app

FIXTURE = Path(__file__).parent / "fixtures" / "archive_v1.sql"
APPEND_ONLY = ("sync_runs", "job_snapshots", "job_status_changes")
# Columns a later sync may legitimately change on a v1 jobs row: a job still visible in v1 is found
# gone (aged out of the 24 h window) by the first new sync of its tenant.
MAY_CHANGE = ("vanished_at", "last_sync_id")


def v1_rows(
    conn: duckdb.DuckDBPyConnection, table: str, exclude: tuple[str, ...] = ()
) -> set[tuple[Any, ...]]:
    """Rows of `table` restricted to the columns version 1 had."""
    v1 = duckdb.connect()
    try:
        v1.execute(FIXTURE.read_text(encoding="utf-8"))
        columns = [
            name
            for (name,) in v1.execute(
                "SELECT column_name FROM duckdb_columns() WHERE table_name = ? ORDER BY column_index", [table]
            ).fetchall()
            if name not in exclude
        ]
    finally:
        v1.close()
    return set(conn.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall())


@pytest.fixture
def upgraded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict[str, set[tuple[Any, ...]]]]:
    db = tmp_path / "archive.duckdb"
    conn = duckdb.connect(str(db))  # published by the v1 release: no private store yet
    conn.execute(FIXTURE.read_text(encoding="utf-8"))
    original = {t: v1_rows(conn, t) for t in (*APPEND_ONLY, "jobs")}
    original["jobs unchanged"] = v1_rows(conn, "jobs", exclude=MAY_CHANGE)
    conn.close()
    monkeypatch.setenv("DEVANA_API_KEY", KEY)
    return db, original


def test_a_v1_archive_survives_its_first_sync_with_every_row(
    upgraded: tuple[Path, dict[str, set[tuple[Any, ...]]]],
) -> None:
    db, original = upgraded
    with soak_twin(db, jobs_per_day=300) as soak:
        for _ in range(2):
            result = CliRunner().invoke(
                app,
                [
                    "sync",
                    "--max-clock-skew",
                    "0",  # the twin runs on simulated time
                    "--tenant",
                    "acme",
                    "--base-url",
                    soak.url,
                    "--db",
                    str(db),
                    "--rate-limit",
                    "100000",
                ],
            )
            assert result.exit_code == 0, result.output
            soak.advance(minutes=10)
        truth = soak.truth()
    v1_ids = frozenset(job_id for (_, job_id, *_) in original["jobs"])
    with closing(open_for_analysis(db)) as conn:
        assert [
            v for (v,) in conn.execute("SELECT version FROM schema_version ORDER BY 1").fetchall()
        ] == list(range(1, SCHEMA_VERSION + 1))
        for table in APPEND_ONLY:
            assert original[table] <= v1_rows(conn, table), table
        assert original["jobs unchanged"] <= v1_rows(conn, "jobs", exclude=MAY_CHANGE)
        # v1 syncs did not count 429s or rejects: NULL, not an invented 0; the new ones do.
        counts = conn.execute(
            "SELECT sync_id LIKE 'v1-%', rate_limited IS NULL, rejects IS NULL FROM sync_runs"
        ).fetchall()
        assert {(old, nulls) for old, nulls, _ in counts} == {(True, True), (False, False)}
        new_jobs = conn.execute(
            "SELECT count(*) FROM jobs WHERE tenant = 'acme' AND job_id NOT LIKE 'cm-%'"
        ).fetchall()
        assert new_jobs[0][0] > 100
        # globex was not synced: its rows are exactly as v1 left them.
        assert conn.execute(
            "SELECT last_sync_id, vanished_at FROM jobs WHERE tenant = 'globex'"
        ).fetchall() == [("v1-sync-1", None)]
        assert invariant_violations(conn) == []
        assert truth_violations(conn, truth, tenant="acme", not_from_twin=v1_ids) == []


def test_an_upgrade_killed_midway_is_finished_by_the_next_sync(
    upgraded: tuple[Path, dict[str, set[tuple[Any, ...]]]],
) -> None:
    db, original = upgraded
    rng = random.Random(3)
    row = KillRow()
    with soak_twin(db, jobs_per_day=300) as soak:
        outcome = kill_one(soak, random_plan(rng, point="open"), row, rng)  # while seeding and migrating
        assert outcome.killed and row.problems == [], row.problems
    assert ArchivePaths.for_db(db).store.is_file()
    with closing(open_for_analysis(db)) as conn:
        for table in APPEND_ONLY:
            assert original[table] <= v1_rows(conn, table), table
        assert original["jobs unchanged"] <= v1_rows(conn, "jobs", exclude=MAY_CHANGE)
