"""Crash safety: a sync killed with SIGKILL at any point leaves an archive that opens, keeps its
invariants, does not block the next sync, and loses nothing once a clean sync has run.

The sync runs in a child process against the twin served by this process on 127.0.0.1. The short
version here kills four runs: the very first sync while applying, then later syncs at a random API
request, a random moment while applying, and while copying the published file. benchmarks/soak.py
runs the same code over many more runs and kill points (random instants, the real CLI, the rename).
"""

from __future__ import annotations

import random
import shutil
from contextlib import closing
from pathlib import Path

import duckdb
import pytest

from benchmarks.soak import (
    KillRow,
    archive_invariant_violations,
    archive_truth_violations,
    final_state_violations,
    invariant_violations,
    kill_one,
    random_plan,
    soak_twin,
)
from jobs_pipeline.archive import ArchivePaths, open_for_analysis


def test_syncs_killed_at_random_points_never_hurt_the_archive(tmp_path: Path) -> None:
    rng = random.Random(20261101)
    rows: dict[str, KillRow] = {}
    with soak_twin(tmp_path / "archive.duckdb", jobs_per_day=400) as soak:
        # The very first sync, killed while applying: the half-made archive must not block the next
        # one (kill_one's recovery sync, with a 2 s lock timeout, then backfills).
        first = rows["first sync"] = KillRow()
        assert kill_one(soak, random_plan(rng, point="apply"), first, rng).killed
        assert first.problems == [], first.problems
        assert ArchivePaths.for_db(soak.db).published.is_file()
        for point in ("request", "apply", "copy"):
            row = rows[point] = KillRow()
            kill_one(soak, random_plan(rng, point=point), row, rng)
            assert row.problems == [], row.problems
        # The phase kills always land; a request kill lands when the sync makes more requests than
        # the drawn index (kill_one's arrivals between runs make syncs of several requests).
        assert sum(row.killed for row in rows.values()) >= 3
        soak.advance(minutes=30)
        soak.sync()
        truth = soak.truth()
        assert archive_invariant_violations(soak.db) == []
        assert archive_truth_violations(soak.db, truth) == []
        assert final_state_violations(soak.db, truth) == []


# -- the oracle itself must be able to fail ------------------------------------------------------


@pytest.fixture
def broken_copy(tmp_path: Path) -> Path:
    """A healthy archive's store, copied so that a test can break it."""
    db = tmp_path / "archive.duckdb"
    with soak_twin(db, jobs_per_day=400) as soak:
        soak.sync()
        soak.advance(minutes=20)
        soak.sync()
    copy = tmp_path / "copy.duckdb"
    shutil.copyfile(ArchivePaths.for_db(db).store, copy)
    with closing(open_for_analysis(db)) as conn:
        assert invariant_violations(conn) == []
    return copy


@pytest.mark.parametrize(
    ("damage", "invariant"),
    [
        (
            "DELETE FROM hot.job_snapshots WHERE job_id = (SELECT min(job_id) FROM jobs)",
            "every job has a snapshot",
        ),
        (
            "UPDATE hot.jobs SET started_at = created_at - INTERVAL 1 MINUTE WHERE job_id = (SELECT min(job_id) FROM jobs)",
            "created_at <= started_at <= completed_at",
        ),
        (
            "UPDATE hot.job_snapshots SET sync_id = 'lost' WHERE job_id = (SELECT min(job_id) FROM jobs)",
            "every row names",
        ),
        (
            "UPDATE hot.jobs SET status = 'ERROR' WHERE status = 'DONE' AND job_id = (SELECT min(job_id) FROM jobs WHERE status = 'DONE')",
            "the latest snapshot agrees with jobs",
        ),
        (
            "DELETE FROM hot.job_status_changes WHERE job_id = (SELECT min(job_id) FROM jobs) AND from_status IS NULL",
            "status changes chain",
        ),
    ],
)
def test_the_invariant_checker_catches_a_broken_archive(
    broken_copy: Path, damage: str, invariant: str
) -> None:
    conn = duckdb.connect(str(broken_copy))
    try:
        conn.execute(damage)
        assert any(v.startswith(invariant) for v in invariant_violations(conn))
    finally:
        conn.close()
