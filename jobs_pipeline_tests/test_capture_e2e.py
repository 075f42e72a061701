"""End to end: the twin over HTTP on 127.0.0.1, the real client, the planner, a real DuckDB file.

Nothing is faked here: every test drives `run_sync` (what the CLI and Dagster call) and reads the
archive the way an analyst does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from jobs_pipeline.api.client import JobsClient
from jobs_pipeline.api.errors import ApiError
from jobs_pipeline.archive import ArchiveBusyError, ArchivePaths, open_for_analysis
from jobs_pipeline.archive.lock import writer_lock
from jobs_pipeline.cli.main import app
from jobs_pipeline.sync import SyncConfig, run_sync
from jobs_pipeline_tests.conftest import TWIN_KEY, MakeTwin, ServedTwin

TABLES = ("jobs", "job_snapshots", "job_status_changes", "sync_runs")


class Harness:
    """A twin, a client with quick retries, and an archive in a temp dir."""

    def __init__(self, served: ServedTwin, db: Path):
        self.twin, self.url, self.clock = served
        self.db = db
        # The twin runs unthrottled here: a stepped clock runs hours in seconds.
        self.client = JobsClient(
            self.url, TWIN_KEY, backoff_base=0.01, backoff_max=0.05, timeout=2.0, rate_limit=100_000
        )
        self.config = SyncConfig(
            base_url=self.url, max_clock_skew_seconds=None, api_key=TWIN_KEY, db_path=db, budget=500
        )

    def sync(self):
        return run_sync(self.config, source=self.client)

    def advance(self, **delta: float) -> None:
        self.clock.advance(timedelta(**delta))

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with open_for_analysis(self.db) as conn:
            return conn.execute(sql, list(params)).fetchall()

    def job(self, job_id: str) -> dict[str, Any]:
        with open_for_analysis(self.db) as conn:
            cur = conn.execute("SELECT * FROM jobs WHERE job_id = ?", [job_id])
            names = [d[0] for d in cur.description]
            rows = cur.fetchall()
        assert rows, f"{job_id} is not archived"
        return dict(zip(names, rows[0], strict=True))

    def changes(self, job_id: str) -> list[tuple[Any, ...]]:
        return self.rows(
            "SELECT from_status, to_status, changed_at, source FROM job_status_changes "
            "WHERE job_id = ? ORDER BY coalesce(changed_at, changed_before), to_status",
            job_id,
        )

    def truth(self, job_id: str) -> dict[str, Any]:
        return next(j for j in self.twin.ground_truth() if j["id"] == job_id)

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table, straight from the writer's store (what a failed sync must not touch)."""
        store = ArchivePaths.for_db(self.db).store
        conn = duckdb.connect(str(store), read_only=True)
        try:
            return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in TABLES}
        finally:
            conn.close()


@pytest.fixture
def harness(make_twin: MakeTwin, tmp_path: Path) -> Iterator[Harness]:
    h = Harness(make_twin(jobs_per_day=0, rate_limit=None), tmp_path / "archive.duckdb")
    yield h
    h.client.close()


@pytest.fixture
def busy_harness(make_twin: MakeTwin, tmp_path: Path) -> Iterator[Harness]:
    h = Harness(make_twin(jobs_per_day=3000, rate_limit=None), tmp_path / "archive.duckdb")
    yield h
    h.client.close()


def iso(ts) -> str:
    return ts.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_job_finishing_between_polls_gets_its_exact_completion(harness: Harness) -> None:
    job_id = harness.twin.add_job("SYNC", queue_seconds=0, run_seconds=15 * 60)
    harness.advance(minutes=1)
    harness.sync()
    assert harness.job(job_id)["status"] == "IN_PROGRESS"
    harness.advance(minutes=20)
    harness.sync()
    job, truth = harness.job(job_id), harness.truth(job_id)
    assert job["status"] == "DONE"
    assert iso(job["completed_at"]) == truth["completedAt"]
    assert ("IN_PROGRESS", "DONE", job["completed_at"], "api_timestamp") in harness.changes(job_id)


def test_economy_looks_for_a_deep_running_job_only_once_it_is_due(harness: Harness) -> None:
    harness.config = replace(harness.config, recheck_running_after_seconds=25 * 60)
    long_job = harness.twin.add_job("SYNC", queue_seconds=0, run_seconds=15 * 60)
    harness.advance(seconds=30)
    for _ in range(150):  # push it past the head page's reach
        harness.twin.add_job("GENERATION", queue_seconds=0, run_seconds=5)
    harness.advance(seconds=30)
    harness.sync()
    assert harness.job(long_job)["status"] == "IN_PROGRESS"
    spent = []
    for _ in range(3):  # +10, +20, +30 min: it finishes at +15
        harness.advance(minutes=10)
        before = harness.client.requests_sent
        harness.sync()
        spent.append(harness.client.requests_sent - before)
        if len(spent) == 2:
            # Finished, but not yet due: the archive knowingly lags (and says nothing false).
            assert harness.job(long_job)["status"] == "IN_PROGRESS"
    assert spent[:2] == [1, 1]  # the head page only
    job, truth = harness.job(long_job), harness.truth(long_job)
    assert job["status"] == "DONE"
    assert iso(job["completed_at"]) == truth["completedAt"]  # late, but exact


def test_job_created_and_finished_between_polls_has_its_whole_history(harness: Harness) -> None:
    harness.sync()
    harness.advance(minutes=1)
    job_id = harness.twin.add_job("GENERATION", queue_seconds=5, run_seconds=40)
    harness.advance(minutes=9)
    harness.sync()
    truth = harness.truth(job_id)
    assert [(f, t) for f, t, _, _ in harness.changes(job_id)] == [
        (None, "PENDING"),
        ("PENDING", "IN_PROGRESS"),
        ("IN_PROGRESS", "DONE"),
    ]
    assert [iso(at) for _, _, at, _ in harness.changes(job_id)] == [
        truth["createdAt"],
        truth["startedAt"],
        truth["completedAt"],
    ]


@pytest.mark.parametrize("stage", ["pending", "running"])
def test_killed_jobs_are_inferred(harness: Harness, stage: str) -> None:
    queue = 3600 if stage == "pending" else 0
    job_id = harness.twin.add_job("IMPORT", queue_seconds=queue, run_seconds=3600)
    harness.advance(minutes=2)
    harness.sync()
    assert harness.job(job_id)["status"] == ("PENDING" if stage == "pending" else "IN_PROGRESS")
    harness.twin.kill(job_id)
    harness.advance(minutes=5)
    summary = harness.sync()
    job = harness.job(job_id)
    assert (job["status"], job["status_inferred"]) == ("KILLED", True)
    assert job["vanished_at"] is not None
    assert summary.jobs_killed == 1
    assert harness.changes(job_id)[-1][1] == "KILLED"


def test_expiry_at_24_hours_keeps_the_last_status(harness: Harness) -> None:
    job_id = harness.twin.add_job("SYNC", queue_seconds=0, run_seconds=40 * 3600)  # runs past the window
    harness.advance(minutes=1)
    harness.sync()
    for _ in range(5):
        harness.advance(hours=5)
        harness.sync()
    job = harness.job(job_id)
    assert job["status"] == "IN_PROGRESS" and not job["status_inferred"]
    assert job["vanished_at"] is not None


def test_burst_beyond_the_cap_is_a_recorded_gap_then_caught_up(harness: Harness) -> None:
    harness.sync()
    harness.advance(minutes=1)
    now = harness.clock.now()
    # 1,500 queued jobs created within a minute (more than any slice can show), run oldest first.
    ids = [
        harness.twin.add_job(
            "EXTRACTION",
            created_at=now - timedelta(milliseconds=40 * i),
            queue_seconds=600 + (1500 - i),
            run_seconds=20,
        )
        for i in range(1500)
    ]
    harness.advance(minutes=1)
    first = harness.sync()
    assert not first.coverage_complete
    gaps = harness.rows("SELECT gaps FROM sync_runs ORDER BY observed_at DESC LIMIT 1")[0][0]
    assert '"PENDING"' in gaps and '"cap"' in gaps
    # Polls go on while the backlog drains: the hidden oldest jobs surface as they run.
    for _ in range(8):
        harness.advance(minutes=5)
        last = harness.sync()
    assert last.coverage_complete
    archived = {r[0]: r[1] for r in harness.rows("SELECT job_id, status FROM jobs")}
    assert [archived.get(i) for i in ids] == ["DONE"] * len(ids)


def test_drift_while_paging_skips_nothing(busy_harness: Harness) -> None:
    h = busy_harness
    h.sync()
    h.advance(minutes=10)

    def new_jobs_arrive(index: int) -> None:
        for _ in range(30):
            h.twin.add_job("GENERATION", queue_seconds=1, run_seconds=30)
        h.clock.advance(timedelta(seconds=2))

    h.twin.before_request = new_jobs_arrive
    try:
        h.sync()
    finally:
        h.twin.before_request = None
    first_instant = h.rows("SELECT min(observed_at) FROM sync_runs")[0][0]
    truth = h.twin.ground_truth()
    archived = {r[0] for r in h.rows("SELECT job_id FROM jobs")}
    # Every job created between the two syncs' first requests was visible: none may be missing.
    created_between = [
        j["id"]
        for j in truth
        if iso(first_instant) < j["createdAt"] <= iso(first_instant + timedelta(minutes=10))
        and j["finalStatus"] != "KILLED"
    ]
    assert created_between and set(created_between) <= archived


def test_same_job_in_two_slices_during_one_sync_keeps_the_later_state(harness: Harness) -> None:
    harness.sync()
    for _ in range(1200):
        harness.twin.add_job("EXTRACTION", queue_seconds=3600, run_seconds=20)
    target = harness.twin.add_job("EMBEDDING", queue_seconds=2, run_seconds=600)
    harness.advance(seconds=1)

    def start_it(index: int) -> None:
        if index == 3:
            harness.clock.advance(timedelta(seconds=5))  # the job leaves PENDING for IN_PROGRESS

    harness.twin.before_request = start_it
    try:
        harness.sync()
    finally:
        harness.twin.before_request = None
    assert harness.job(target)["status"] == "IN_PROGRESS"


def test_a_429_storm_mid_sync_is_ridden_out(busy_harness: Harness) -> None:
    h = busy_harness
    h.sync()
    h.advance(minutes=30)

    h.twin.faults.fail_next(4, "429")  # the client makes 6 attempts per request
    summary = h.sync()
    assert summary.rate_limited >= 4
    assert summary.coverage_complete


def test_a_failure_mid_sync_leaves_the_archive_exactly_as_it_was(busy_harness: Harness) -> None:
    h = busy_harness
    h.sync()
    h.advance(minutes=10)
    h.sync()
    before = h.dump()
    h.advance(minutes=60)  # enough new jobs for a sync of several pages

    def break_after_first(index: int) -> None:
        if index == len_at_start + 1:
            h.twin.faults.fail_next(50, "500")

    len_at_start = len(h.twin.requests)
    h.twin.before_request = break_after_first
    try:
        with pytest.raises(ApiError):
            h.sync()
    finally:
        h.twin.before_request = None
    assert h.dump() == before


def test_a_rerun_at_the_same_instant_writes_nothing_new(busy_harness: Harness) -> None:
    h = busy_harness
    h.sync()
    h.advance(minutes=10)
    h.sync()
    counts = {t: h.rows(f"SELECT count(*) FROM {t}")[0][0] for t in ("job_snapshots", "job_status_changes")}
    again = h.sync()
    assert again.jobs_new == 0 and again.jobs_changed == 0
    assert {t: h.rows(f"SELECT count(*) FROM {t}")[0][0] for t in counts} == counts


def test_run_sync_closes_the_client_it_made_whatever_happens_and_never_the_callers(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[JobsClient] = []
    closed: list[JobsClient] = []
    original_init, original_close = JobsClient.__init__, JobsClient.close

    def init(self: JobsClient, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        made.append(self)

    def close(self: JobsClient) -> None:
        closed.append(self)
        original_close(self)

    monkeypatch.setattr(JobsClient, "__init__", init)
    monkeypatch.setattr(JobsClient, "close", close)
    monkeypatch.setattr(JobsClient, "_backoff", lambda self, state: 0.0)
    config = harness.config  # no source passed: run_sync makes its own client

    run_sync(config)  # a sync that succeeds
    paths = ArchivePaths.for_db(harness.db)
    with writer_lock(paths.lock_file, timeout=0, archive_label="test"), pytest.raises(ArchiveBusyError):
        run_sync(replace(config, lock_timeout=0))  # fails before the archive is opened
    harness.sync()  # the caller's client: used, not closed
    harness.twin.faults.fail_next(50, "500")
    with pytest.raises(ApiError):
        run_sync(config)  # fails mid-sync
    assert len(made) == 3 and closed == made


def test_the_wrong_key_exits_non_zero_and_writes_nothing(
    make_twin: MakeTwin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = make_twin(jobs_per_day=500)
    db = tmp_path / "archive.duckdb"
    monkeypatch.setenv("DEVANA_API_KEY", "not-the-key")
    result = CliRunner().invoke(
        app, ["sync", "--max-clock-skew", "0", "--base-url", served.base_url, "--db", str(db)]
    )
    assert result.exit_code != 0
    assert "not-the-key" not in result.output
    assert "key" in result.output.lower()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_the_cli_sync_prints_one_line(
    make_twin: MakeTwin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = make_twin(jobs_per_day=500, rate_limit=None)
    monkeypatch.setenv("DEVANA_API_KEY", TWIN_KEY)
    result = CliRunner().invoke(
        app,
        ["sync", "--max-clock-skew", "0", "--base-url", served.base_url, "--db", str(tmp_path / "a.duckdb")],
    )
    assert result.exit_code == 0, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert "jobs seen" in result.output
