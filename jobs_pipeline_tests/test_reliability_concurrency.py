"""Concurrency: two syncs on one archive never corrupt it (one waits, or exits with a clear message),
and an analyst's session held open on the published file never makes a scheduled sync fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import jobs_pipeline.archive.lock as lock_module
from benchmarks.soak import (
    KEY,
    REPO_ROOT,
    SoakTwin,
    archive_invariant_violations,
    archive_state,
    archive_truth_violations,
    open_store,
    soak_twin,
    state_differences,
)
from jobs_pipeline import sync as sync_module
from jobs_pipeline.api.client import JobsClient
from jobs_pipeline.archive import (
    ArchiveBusyError,
    ArchivePaths,
    SyncSummary,
    check_writable,
    open_for_analysis,
    open_writer,
)
from jobs_pipeline.archive.lock import writer_lock
from jobs_pipeline.cli.main import app
from jobs_pipeline.sync import SyncConfig, run_sync


@pytest.fixture
def soak(tmp_path: Path) -> Iterator[SoakTwin]:
    with soak_twin(tmp_path / "archive.duckdb", jobs_per_day=400) as twin:
        yield twin


def sync_count(db: Path) -> int:
    with closing(open_for_analysis(db)) as conn:
        return int(conn.execute("SELECT count(*) FROM sync_runs").fetchall()[0][0])


def cli_sync(soak: SoakTwin, lock_timeout: float) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "jobs_pipeline.cli.main", "sync", "--base-url", soak.url]
    command += ["--db", str(soak.db), "--rate-limit", "100000", "--lock-timeout", str(lock_timeout)]
    env = dict(os.environ, DEVANA_API_KEY=KEY)
    return subprocess.Popen(
        command, env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def slow_api(soak: SoakTwin, seconds: float) -> None:
    """Each API request takes `seconds`: a sync holds the archive for a while."""
    soak.twin.before_request = lambda index: time.sleep(seconds)


@pytest.mark.slow  # two processes importing polars and duckdb at once: ~10 s of CPU
def test_two_cli_syncs_at_once_never_corrupt_the_archive(soak: SoakTwin) -> None:
    """Two real processes race for a fresh archive. Which one wins, and whether they overlap at all,
    depends on the machine; either way each exits 0 or 3 with a clear line, and nothing breaks."""
    slow_api(soak, 0.15)
    runs = [cli_sync(soak, lock_timeout=0.5) for _ in range(2)]
    outcomes = sorted((run.wait(120), *run.communicate()) for run in runs)
    soak.twin.before_request = None
    codes = [code for code, _, _ in outcomes]
    assert codes in ([0, 0], [0, 3]), outcomes
    if codes == [0, 3]:
        _, out, err = outcomes[1]
        assert out == "" and err.count("\n") == 1
        assert err.startswith("error: another sync (pid ") and "try again later" in err
    assert sync_count(soak.db) == codes.count(0)
    paths = ArchivePaths.for_db(soak.db)
    assert paths.store.is_file() and paths.lock_file.is_file()  # the loser removed nothing
    assert archive_invariant_violations(soak.db) == []
    assert archive_truth_violations(soak.db, soak.truth()) == []
    soak.sync()  # and the archive goes on


@contextmanager
def sync_holding_the_archive(soak: SoakTwin) -> Iterator[threading.Event]:
    """A real sync (run_sync, in a thread) that has the writer lock and is stuck on its first API
    request until the event is set; it then finishes normally."""
    release, holding = threading.Event(), threading.Event()
    slow_client = JobsClient(soak.url, KEY, timeout=60, rate_limit=100_000)

    def first_request_waits(index: int) -> None:
        holding.set()
        release.wait(60)

    soak.twin.before_request = first_request_waits
    config = SyncConfig(base_url=soak.url, max_clock_skew_seconds=None, api_key=KEY, db_path=soak.db)
    holder = threading.Thread(target=run_sync, args=(config,), kwargs={"source": slow_client})
    holder.start()
    try:
        assert holding.wait(30)
        yield release
    finally:
        release.set()
        holder.join(60)
        soak.twin.before_request = None
        slow_client.close()


def test_a_sync_finding_the_archive_busy_exits_in_one_clear_line(
    soak: SoakTwin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEVANA_API_KEY", KEY)
    with sync_holding_the_archive(soak):
        result = CliRunner().invoke(
            app, ["sync", "--base-url", soak.url, "--db", str(soak.db), "--lock-timeout", "0.3"]
        )
    assert result.exit_code == 3 and result.stdout == ""
    err = result.stderr
    assert err.count("\n") == 1 and err.startswith(f"error: another sync (pid {os.getpid()}, since ")
    assert f"is writing {soak.db}; try again later" in err
    assert sync_count(soak.db) == 1  # the holder's sync, whole
    assert archive_invariant_violations(soak.db) == []


def test_a_sync_finding_the_archive_busy_waits_its_turn(soak: SoakTwin) -> None:
    config = SyncConfig(
        base_url=soak.url, max_clock_skew_seconds=None, api_key=KEY, db_path=soak.db, lock_timeout=60
    )
    done: list[object] = []
    with sync_holding_the_archive(soak) as release:
        patient = threading.Thread(target=lambda: done.append(run_sync(config, source=soak.client)))
        patient.start()
        time.sleep(1.0)
        assert patient.is_alive() and not done  # queued on the lock
        release.set()
        patient.join(60)
    assert done and sync_count(soak.db) == 2
    assert archive_invariant_violations(soak.db) == []
    assert archive_truth_violations(soak.db, soak.truth()) == []


def test_a_sync_that_never_got_the_lock_removes_nothing_of_the_holders(soak: SoakTwin) -> None:
    """Regression: a failed first sync removed the writer directory even when it had never held the
    lock, pulling the lock file (and the store being created) from under the sync that held it."""
    paths = check_writable(soak.db)
    config = SyncConfig(
        base_url=soak.url, max_clock_skew_seconds=None, api_key=KEY, db_path=soak.db, lock_timeout=0.2
    )
    with writer_lock(paths.lock_file, timeout=1, archive_label="test"):  # another first sync, just started
        with pytest.raises(ArchiveBusyError):
            run_sync(config, source=soak.client)
        assert paths.lock_file.is_file()


def test_a_failed_sync_after_anothers_first_sync_keeps_its_data(
    soak: SoakTwin, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: a sync that started before the archive existed and ran after another's first sync
    (it had waited for the lock), then failed, removed the store the other sync had just written."""
    checked, go = threading.Event(), threading.Event()
    original = sync_module.open_writer

    def pause_then_open(db_path: Path, **kwargs: Any) -> AbstractContextManager[Any]:
        if threading.current_thread().name == "late":
            checked.set()
            go.wait(30)  # the other sync runs its whole first sync meanwhile
        return original(db_path, **kwargs)

    monkeypatch.setattr(sync_module, "open_writer", pause_then_open)
    failure: list[BaseException] = []

    def late_sync() -> None:
        try:
            run_sync(
                SyncConfig(base_url=soak.url, max_clock_skew_seconds=None, api_key=KEY, db_path=soak.db),
                source=soak.client,
            )
        except BaseException as exc:
            failure.append(exc)

    late = threading.Thread(target=late_sync, name="late")
    late.start()
    assert checked.wait(30)
    assert not ArchivePaths.for_db(soak.db).store.exists()  # the late sync saw no archive
    soak.sync()  # the other sync's first sync
    soak.twin.faults.fail_next(6, "500")
    go.set()
    late.join(60)
    assert failure and "500" in str(failure[0])
    with open_store(soak.db) as conn:  # the first sync's data is still in the store
        assert conn.execute("SELECT count(*) FROM sync_runs").fetchall() == [(1,)]


class ApiGoneAfterRelease:
    """A source whose first request waits until released, then fails: a first sync that fails."""

    def __init__(self) -> None:
        self.holding, self.release = threading.Event(), threading.Event()

    def list_jobs(self, **kwargs: Any) -> Any:
        self.holding.set()
        self.release.wait(30)
        raise ConnectionError("the API went away")


def test_a_sync_waiting_on_a_failed_first_sync_proceeds(
    soak: SoakTwin, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: a failed first sync removed the writer directory, lock file included, once it had
    released the lock; the sync waiting on that lock file then held a lock on a deleted file and
    failed ("cannot open the archive store"), or could have run beside a third sync."""
    waiting = threading.Event()
    original = lock_module._acquire

    def acquire(fd: int, **kwargs: Any) -> None:
        if threading.current_thread().name == "waiter":
            waiting.set()
        original(fd, **kwargs)

    monkeypatch.setattr(lock_module, "_acquire", acquire)
    outcomes: dict[str, object] = {}

    def run(name: str, source: Any) -> None:
        config = SyncConfig(
            base_url=soak.url, max_clock_skew_seconds=None, api_key=KEY, db_path=soak.db, lock_timeout=60
        )
        try:
            outcomes[name] = run_sync(config, source=source)
        except Exception as exc:
            outcomes[name] = exc

    failing = ApiGoneAfterRelease()
    first = threading.Thread(target=run, args=("first", failing), name="first")
    first.start()
    assert failing.holding.wait(30)  # the first sync holds the lock, its store created
    waiter = threading.Thread(target=run, args=("waiter", soak.client), name="waiter")
    waiter.start()
    assert waiting.wait(30)  # the waiter has the lock file open and waits on it
    failing.release.set()
    first.join(60)
    waiter.join(60)
    assert isinstance(outcomes["first"], ConnectionError)
    assert isinstance(outcomes["waiter"], SyncSummary), outcomes["waiter"]
    paths = ArchivePaths.for_db(soak.db)
    assert paths.store.is_file() and paths.lock_file.is_file()
    assert sync_count(soak.db) == 1
    assert archive_invariant_violations(soak.db) == []
    assert archive_truth_violations(soak.db, soak.truth()) == []


def test_a_busy_archive_leaves_the_archive_untouched(soak: SoakTwin) -> None:
    soak.sync()
    before = archive_state(soak.db)
    config = SyncConfig(
        base_url=soak.url, max_clock_skew_seconds=None, api_key=KEY, db_path=soak.db, lock_timeout=0.2
    )
    with open_writer(soak.db, lock_timeout=5), pytest.raises(ArchiveBusyError):
        run_sync(config, source=soak.client)
    assert state_differences(before, archive_state(soak.db)) == []


ANALYST = r"""
import sys, duckdb
conn = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "read_only")
count = lambda: conn.execute("SELECT count(*) FROM sync_runs").fetchall()[0][0]
print(count(), flush=True)
sys.stdin.readline()
print(count(), flush=True)
"""


@pytest.mark.parametrize("mode", ["read_only", "read_write"])
def test_an_analysts_long_session_never_fails_a_sync(soak: SoakTwin, mode: str) -> None:
    soak.sync()
    analyst = subprocess.Popen(
        [sys.executable, "-c", ANALYST, str(soak.db), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert analyst.stdin is not None and analyst.stdout is not None
    try:
        assert analyst.stdout.readline().strip() == "1"
        # A read-only session in this process too, as a notebook would hold (DuckDB itself refuses
        # it next to another process's read-write session: that is the analyst's own conflict).
        in_process = open_for_analysis(soak.db) if mode == "read_only" else None
        for _ in range(2):
            soak.advance(minutes=5)
            soak.sync()  # scheduled syncs while the sessions stay open
        analyst.stdin.write("\n")
        analyst.stdin.flush()
        assert analyst.stdout.readline().strip() == "1"  # the session answers, from its version
        if in_process is not None:
            assert in_process.execute("SELECT count(*) FROM sync_runs").fetchall() == [(1,)]
            in_process.close()
    finally:
        analyst.kill()
        analyst.wait()
    assert sync_count(soak.db) == 3  # a new session sees every sync
    assert archive_invariant_violations(soak.db) == []
