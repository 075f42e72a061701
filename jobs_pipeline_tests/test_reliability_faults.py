"""Fault storms on the API twin: every sync completes with data matching the ground truth, or fails
with a clear one-line error and leaves the archive exactly as it was (every table of both files,
the published file's bytes, the directory listing).

The twin serves over HTTP on 127.0.0.1 without a rate limit; the client is the real JobsClient with
millisecond backoff. The oracle (`archive_state`, `truth_violations`, ...) is benchmarks/soak.py's,
which runs the long version of these storms.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from benchmarks.soak import (
    ATTEMPTS_TO_EXHAUST,
    KEY,
    PAGE_FAULT_KINDS,
    SoakTwin,
    StormRow,
    archive_invariant_violations,
    archive_state,
    archive_truth_violations,
    soak_twin,
    state_differences,
    storm_sync,
)
from jobs_pipeline.api.errors import ApiError, RateLimitedError
from jobs_pipeline.api.parse import DUPLICATE_REASON
from jobs_pipeline.archive import open_for_analysis
from jobs_pipeline.cli.main import app
from jobs_pipeline.twin import FAULT_KINDS, FaultConfig
from jobs_pipeline.twin.faults import ODD_UNICODE

TRANSIENT_KINDS = tuple(k for k in FAULT_KINDS if k not in PAGE_FAULT_KINDS)


@pytest.fixture
def soak(tmp_path: Path) -> Iterator[SoakTwin]:
    # Retry-After 0 keeps injected 429/503 cheap here; the Retry-After tests set their own.
    faults = FaultConfig(timeout_seconds=0.8, retry_after_seconds=0)
    with soak_twin(tmp_path / "archive.duckdb", jobs_per_day=200, faults=faults, client_timeout=0.3) as twin:
        twin.sync()  # a baseline archive: the syncs under test are incremental ones
        twin.advance(minutes=10)
        yield twin


def assert_matches_truth(soak: SoakTwin) -> None:
    assert archive_invariant_violations(soak.db) == []
    assert archive_truth_violations(soak.db, soak.truth()) == []


def add_new_jobs(soak: SoakTwin, count: int) -> None:
    """Enough new jobs for a sync of several pages (so a storm can start mid-sync). Created a second
    after the last sync's instant: at that instant itself they would contradict what it saw."""
    soak.advance(seconds=1)
    for i in range(count):
        soak.twin.add_job("GENERATION", queue_seconds=i % 7, run_seconds=30 + i % 50)
    soak.advance(minutes=2)


def fail_from_request(soak: SoakTwin, request: int, count: int, kind: str) -> None:
    """Script `count` faults of `kind` starting at the sync's `request`-th request (0 = first)."""
    at = len(soak.twin.requests) + request
    soak.twin.before_request = lambda index: soak.twin.faults.fail_next(count, kind) if index == at else None


def assert_one_clear_line(message: str) -> None:
    assert message and "\n" not in message and "Traceback" not in message
    assert KEY not in message


@pytest.mark.parametrize("kind", TRANSIENT_KINDS)
def test_a_storm_shorter_than_the_retries_is_ridden_out(soak: SoakTwin, kind: str) -> None:
    soak.twin.faults.fail_next(ATTEMPTS_TO_EXHAUST[kind] - 1, kind)
    summary = soak.sync()
    assert summary.coverage_complete
    assert soak.client.retries >= ATTEMPTS_TO_EXHAUST[kind] - 1
    assert_matches_truth(soak)


@pytest.mark.parametrize("kind", TRANSIENT_KINDS)
def test_a_storm_longer_than_the_retries_fails_cleanly_mid_sync(soak: SoakTwin, kind: str) -> None:
    add_new_jobs(soak, 260)  # three pages or more
    before = archive_state(soak.db)
    first = len(soak.twin.requests)
    fail_from_request(soak, 1, ATTEMPTS_TO_EXHAUST[kind], kind)
    try:
        with pytest.raises(ApiError) as failure:
            soak.sync()
    finally:
        soak.twin.before_request = None
    assert len(soak.twin.requests) - first > ATTEMPTS_TO_EXHAUST[kind]  # it failed mid-sync, not at once
    assert_one_clear_line(str(failure.value))
    assert f"gave up after {ATTEMPTS_TO_EXHAUST[kind]} attempts" in str(failure.value)
    assert state_differences(before, archive_state(soak.db)) == []
    # And the next sync, the storm over, catches up with everything.
    soak.sync()
    assert_matches_truth(soak)


@pytest.mark.parametrize("kind", PAGE_FAULT_KINDS)
def test_damaged_pages_complete_and_keep_what_they_could_not_parse(soak: SoakTwin, kind: str) -> None:
    add_new_jobs(soak, 120)
    soak.twin.faults.fail_next(2, kind)  # one page damaged, then again when it is asked for again
    summary = soak.sync()
    assert summary.coverage_complete
    assert_matches_truth(soak)
    with closing(open_for_analysis(soak.db)) as conn:
        rejected = conn.execute(
            "SELECT reason, job_id, payload FROM rejected_records WHERE sync_id = ?", [summary.sync_id]
        ).fetchall()
        if kind == "huge_metadata":
            ((longest,),) = conn.execute(
                "SELECT max(length(metadata->>'extractedText')) FROM jobs"
            ).fetchall()
            assert longest == soak.twin.faults.config.huge_metadata_bytes
        if kind == "odd_unicode":
            names = conn.execute(
                "SELECT metadata->>'fileName' FROM jobs WHERE metadata->>'fileName' LIKE '%🚀%'"
            ).fetchall()
            assert names and all(name == ODD_UNICODE for (name,) in names)  # NUL, RTL marks, ZWJ intact
    assert summary.rejects == len(rejected)
    if kind in ("bad_record", "duplicate_ids"):
        assert len(rejected) == 2, "each malformed record is kept with its reason, never dropped"
        assert all(reason and payload for reason, _, payload in rejected)
        if kind == "duplicate_ids":
            assert {reason for reason, _, _ in rejected} == {DUPLICATE_REASON}
            assert all(job_id for _, job_id, _ in rejected)
    else:
        assert rejected == []


@pytest.mark.parametrize("kind", ["bad_record", "duplicate_ids"])
def test_a_page_that_stays_damaged_is_a_gap_the_next_sync_fills(soak: SoakTwin, kind: str) -> None:
    add_new_jobs(soak, 120)
    soak.twin.faults.fail_next(3, kind)  # the page and both of its re-reads
    summary = soak.sync()
    assert not summary.coverage_complete
    assert [gap.reason for gap in summary.gaps] == ["rejected"]
    assert summary.rejects == 3
    assert_matches_truth(soak)  # what it did archive is right, and nothing was inferred from the page
    soak.advance(minutes=5)
    assert soak.sync().coverage_complete
    assert_matches_truth(soak)  # now every job that was visible is archived


@pytest.mark.parametrize("kind", ["bad_record", "duplicate_ids"])
@pytest.mark.parametrize("fault_seed", [1, 2, 3])
def test_a_malformed_record_never_makes_a_running_job_killed(
    tmp_path: Path, kind: str, fault_seed: int
) -> None:
    """Regression: a page with an unreadable row (or a duplicate in place of a job) used to prove the
    whole page's createdAt range, so the running job hidden behind that row was inferred KILLED."""
    faults = FaultConfig(seed=fault_seed)
    with soak_twin(tmp_path / "archive.duckdb", jobs_per_day=0, faults=faults) as soak:
        running = [soak.twin.add_job("SYNC", queue_seconds=0, run_seconds=3600) for _ in range(20)]
        soak.advance(seconds=30)
        soak.sync()
        soak.advance(minutes=5)
        # The damaged row is always one of the running jobs; the page and its re-reads stay damaged.
        soak.twin.faults.fail_next(3, kind)
        summary = soak.sync()
        assert summary.rejects == 3 and summary.jobs_killed == 0
        assert_matches_truth(soak)
        with closing(open_for_analysis(soak.db)) as conn:
            statuses = dict(conn.execute("SELECT job_id, status FROM jobs").fetchall())
        assert {statuses[job_id] for job_id in running} == {"IN_PROGRESS"}


@pytest.mark.parametrize("retry_after_format", ["seconds", "http-date"])
def test_injected_429s_honour_retry_after_in_seconds_and_as_http_date(
    tmp_path: Path, retry_after_format: str
) -> None:
    faults = FaultConfig(retry_after_seconds=1)
    with soak_twin(
        tmp_path / "archive.duckdb", jobs_per_day=200, faults=faults, retry_after_format=retry_after_format
    ) as soak:
        soak.twin.faults.storm_429(2)
        started = time.monotonic()
        summary = soak.sync()
        waited = time.monotonic() - started
    assert summary.rate_limited == 2 and summary.coverage_complete
    assert waited >= 2.0  # 1 s per 429, measured on the server's clock for the HTTP-date form


def test_the_twins_own_rate_limit_is_ridden_out(tmp_path: Path) -> None:
    """Real 429 bursts: the twin allows 4 requests per second and the client does not throttle."""
    with soak_twin(
        tmp_path / "archive.duckdb", jobs_per_day=800, rate_limit=4, rate_window_seconds=1.0
    ) as throttled:
        summary = throttled.sync()
        assert summary.rate_limited >= 1 and summary.coverage_complete
        assert_matches_truth(throttled)


def test_a_retry_after_beyond_the_cap_fails_fast_and_clearly(soak: SoakTwin) -> None:
    soak.twin.faults.configure(retry_after_seconds=600)
    before = archive_state(soak.db)
    soak.twin.faults.storm_429(1)
    started = time.monotonic()
    with pytest.raises(RateLimitedError) as failure:
        soak.sync()
    assert time.monotonic() - started < 5
    assert "600 s" in str(failure.value)
    assert_one_clear_line(str(failure.value))
    assert state_differences(before, archive_state(soak.db)) == []


def test_the_cli_reports_a_storm_in_one_line_and_writes_nothing(
    soak: SoakTwin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEVANA_API_KEY", KEY)
    soak.twin.faults.configure(retry_after_seconds=600)  # the CLI's own backoff would take seconds
    before = archive_state(soak.db)
    soak.twin.faults.fail_next(1, "503")
    result = CliRunner().invoke(
        app, ["sync", "--base-url", soak.url, "--db", str(soak.db), "--rate-limit", "100000"]
    )
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("error: the API failed (503)")
    assert result.stderr.count("\n") == 1
    assert state_differences(before, archive_state(soak.db)) == []


def test_a_random_storm_at_30_percent(tmp_path: Path) -> None:
    """Every sync under random faults of every kind either completes right or fails cleanly."""
    faults = FaultConfig(
        rate=0.3, timeout_seconds=0.8, retry_after_seconds=0, huge_metadata_bytes=50_000, seed=5
    )
    rows = {kind: StormRow() for kind in FAULT_KINDS}
    with soak_twin(tmp_path / "archive.duckdb", jobs_per_day=300, faults=faults, client_timeout=0.3) as soak:
        verdicts = []
        for _ in range(6):
            add_new_jobs(soak, 110)  # two pages and more per sync
            verdicts.append(storm_sync(soak, rows))
        assert set(verdicts) <= {"completed", "failed_clean"}, verdicts
        assert sum(row.injected for row in rows.values()) >= 4  # the storm really happened
        soak.twin.faults.configure(rate=0.0)
        soak.sync()
        assert_matches_truth(soak)
