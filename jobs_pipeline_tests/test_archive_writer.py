"""One writer, analysts never in the way: lock, private store, publish, read-only readers, refusals."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

import jobs_pipeline.archive.lock as lock_module
import jobs_pipeline.archive.writer as writer_module
from jobs_pipeline.archive import (
    SCHEMA_VERSION,
    ArchiveBusyError,
    ArchiveError,
    ArchiveNotFoundError,
    ArchiveNotWritableError,
    ArchivePaths,
    ArchiveVersionError,
    apply_capture,
    check_writable,
    open_for_analysis,
    open_writer,
)
from jobs_pipeline.archive.lock import describe_holder, writer_lock
from jobs_pipeline_tests.test_archive_builders import at, make_job, make_result

REPO = Path(__file__).resolve().parents[1]

# A real sync process: holds the writer (open_writer) until a line arrives on stdin, or dies abruptly.
HOLDER = """
import os, sys
from jobs_pipeline.archive import open_writer
with open_writer(sys.argv[1]) as conn:
    print("locked", flush=True)
    if sys.stdin.readline().strip() == "crash":
        os._exit(1)
"""

# The same lock without DuckDB (starts in a fraction of the time): for tests about the lock alone.
LOCK_HOLDER = """
import os, sys
from jobs_pipeline.archive.lock import writer_lock
from jobs_pipeline.archive.paths import check_writable
paths = check_writable(sys.argv[1])
with writer_lock(paths.lock_file, timeout=0, archive_label=sys.argv[1]):
    print("locked", flush=True)
    if sys.stdin.readline().strip() == "crash":
        os._exit(1)
"""

# An analyst's session in its own process, answering one SQL query per stdin line.
ANALYST = """
import sys, duckdb
conn = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "ro")
print("open", flush=True)
for line in sys.stdin:
    try:
        print(conn.execute(line).fetchall()[0][0], flush=True)
    except Exception as exc:
        print(f"ERROR {exc}", flush=True)
"""


class Child:
    """A Python subprocess spoken to line by line."""

    def __init__(self, code: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, *args],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def read(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def ask(self, sql: str) -> str:
        self.send(sql)
        return self.read()

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def children() -> Iterator[list[Child]]:
    started: list[Child] = []
    yield started
    for child in started:
        child.close()


def sync(db: Path, sync_id: str, minute: float, *job_ids: str, lock_timeout: float = 10) -> None:
    with open_writer(db, lock_timeout=lock_timeout) as conn:
        jobs = [make_job(job_id, "PENDING") for job_id in job_ids]
        apply_capture(conn, make_result(sync_id, at(minutes=minute), jobs))


def published_jobs(db: Path) -> int:
    conn = open_for_analysis(db)
    try:
        return int(conn.execute("SELECT count(*) FROM jobs").fetchall()[0][0])
    finally:
        conn.close()


def test_paths_live_beside_the_published_file(tmp_path: Path) -> None:
    paths = ArchivePaths.for_db(tmp_path / "out" / "archive.duckdb")
    assert paths.store == tmp_path / "out" / ".archive.duckdb.writer" / "archive.duckdb"
    assert paths.lock_file == tmp_path / "out" / ".archive.duckdb.writer" / "lock"
    assert paths.publish_temp(42).parent == paths.published.parent


def test_writer_creates_store_and_publishes_a_copy(tmp_path: Path) -> None:
    db = tmp_path / "demo-output" / "archive.duckdb"
    sync(db, "s1", 1, "j1", "j2")
    paths = ArchivePaths.for_db(db)
    assert paths.store.is_file() and db.is_file()
    assert not paths.store_wal.exists()
    assert published_jobs(db) == 2
    assert list(db.parent.glob(".*.tmp")) == []


def test_reader_is_read_only_and_missing_archive_is_explicit(tmp_path: Path) -> None:
    with pytest.raises(ArchiveNotFoundError, match="run a sync first"):
        open_for_analysis(tmp_path / "none.duckdb")
    db = tmp_path / "archive.duckdb"
    sync(db, "s1", 1, "j1")
    conn = open_for_analysis(db)
    with pytest.raises(duckdb.Error):
        conn.execute("DELETE FROM jobs")
    assert conn.execute("SELECT count(*) FROM job_snapshots").fetchall() == [(1,)]
    conn.close()


def test_second_writer_waits_then_names_the_holder(tmp_path: Path, children: list[Child]) -> None:
    db = tmp_path / "archive.duckdb"
    holder = Child(HOLDER, str(db))
    children.append(holder)
    assert holder.read() == "locked"

    started = time.monotonic()
    with pytest.raises(ArchiveBusyError) as caught:
        sync(db, "s1", 1, "j1", lock_timeout=0.6)
    waited = time.monotonic() - started
    assert waited >= 0.6
    message = str(caught.value)
    assert f"pid {holder.proc.pid}, since 20" in message
    assert str(db) in message and "try again later" in message


def test_second_writer_proceeds_once_the_first_finishes(tmp_path: Path, children: list[Child]) -> None:
    db = tmp_path / "archive.duckdb"
    holder = Child(LOCK_HOLDER, str(db))
    children.append(holder)
    assert holder.read() == "locked"
    threading.Timer(0.5, holder.send, args=("done",)).start()
    sync(db, "s1", 1, "j1", lock_timeout=60)
    assert published_jobs(db) == 1
    assert describe_holder(ArchivePaths.for_db(db).lock_file) == "pid unknown, since an unknown time"


def test_a_crashed_writer_leaves_no_lock_behind(tmp_path: Path, children: list[Child]) -> None:
    db = tmp_path / "archive.duckdb"
    holder = Child(LOCK_HOLDER, str(db))
    children.append(holder)
    assert holder.read() == "locked"
    holder.send("crash")
    holder.proc.wait(timeout=30)
    sync(db, "s1", 1, "j1", lock_timeout=0)
    assert published_jobs(db) == 1


@pytest.fixture
def waiter_waits(monkeypatch: pytest.MonkeyPatch) -> list[threading.Event]:
    """Events set each time the thread named "waiter" starts waiting on a lock file it has opened."""
    events = [threading.Event() for _ in range(4)]
    calls = 0
    original = lock_module._acquire

    def acquire(fd: int, **kwargs: Any) -> None:
        nonlocal calls
        if threading.current_thread().name == "waiter":
            events[calls].set()
            calls += 1
        original(fd, **kwargs)

    monkeypatch.setattr(lock_module, "_acquire", acquire)
    return events


def test_a_waiter_whose_lock_file_was_removed_locks_a_new_one(
    tmp_path: Path, waiter_waits: list[threading.Event]
) -> None:
    """Regression: the holder (a failed first sync) removed the writer directory, lock file included;
    the waiter then got a lock on the deleted file and went on with no directory and no lock file."""
    paths = check_writable(tmp_path / "archive.duckdb")
    seen: dict[str, object] = {}

    def waiter() -> None:
        with writer_lock(paths.lock_file, timeout=30, archive_label="test"):
            seen["lock file"] = paths.lock_file.is_file()
            seen["holder"] = describe_holder(paths.lock_file).startswith(f"pid {os.getpid()}, since 20")
            try:
                with writer_lock(paths.lock_file, timeout=0, archive_label="test"):
                    seen["another writer"] = "got in too"
            except ArchiveBusyError:
                seen["another writer"] = "busy"
            except OSError as exc:
                seen["another writer"] = repr(exc)

    thread = threading.Thread(target=waiter, name="waiter")
    with writer_lock(paths.lock_file, timeout=0, archive_label="test"):
        thread.start()
        assert waiter_waits[0].wait(30)  # the waiter has the lock file open and waits on it
        shutil.rmtree(paths.writer_dir)
    thread.join(30)
    assert seen == {"lock file": True, "holder": True, "another writer": "busy"}


def test_a_waiter_whose_lock_file_was_replaced_waits_for_the_new_holder(
    tmp_path: Path, waiter_waits: list[threading.Event]
) -> None:
    """The removed lock file was recreated and locked by a third sync meanwhile: the waiter must wait
    for that one, not run beside it on the old file."""
    paths = check_writable(tmp_path / "archive.duckdb")
    entered = threading.Event()

    def waiter() -> None:
        with writer_lock(paths.lock_file, timeout=30, archive_label="test"):
            entered.set()

    thread = threading.Thread(target=waiter, name="waiter")
    third = writer_lock(paths.lock_file, timeout=0, archive_label="test")
    with writer_lock(paths.lock_file, timeout=0, archive_label="test"):
        thread.start()
        assert waiter_waits[0].wait(30)
        shutil.rmtree(paths.writer_dir)
        check_writable(paths.published)
        third.__enter__()  # a third sync arrives now: a new directory and lock file, locked
    try:
        assert waiter_waits[1].wait(10)  # the waiter noticed and now waits on the new file
        assert not entered.is_set()
    finally:
        third.__exit__(None, None, None)
    thread.join(30)
    assert entered.is_set()


def test_a_failed_first_write_is_discarded_before_the_lock_is_released(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "archive.duckdb"
    paths = ArchivePaths.for_db(db)
    lock_during_discard: list[str] = []
    original = writer_module._discard_writer_dir

    def discard(p: ArchivePaths) -> None:
        try:
            with writer_lock(p.lock_file, timeout=0, archive_label="probe"):
                lock_during_discard.append("free")
        except ArchiveBusyError:
            lock_during_discard.append("held")
        original(p)

    monkeypatch.setattr(writer_module, "_discard_writer_dir", discard)
    with pytest.raises(RuntimeError, match="first sync failed"), open_writer(db, discard_empty_on_error=True):
        raise RuntimeError("first sync failed")
    assert lock_during_discard == ["held"]
    assert list(tmp_path.iterdir()) == []  # nothing half-made left behind

    sync(db, "s1", 1, "j1")
    with pytest.raises(RuntimeError, match="later sync failed"), open_writer(db, discard_empty_on_error=True):
        raise RuntimeError("later sync failed")
    assert lock_during_discard == ["held"]  # a store holding a sync is never discarded
    assert paths.store.is_file() and published_jobs(db) == 1


def test_an_open_analyst_session_does_not_stop_the_writer(tmp_path: Path, children: list[Child]) -> None:
    db = tmp_path / "archive.duckdb"
    sync(db, "s1", 1, "j1")
    analyst = Child(ANALYST, str(db), "ro")
    children.append(analyst)
    assert analyst.read() == "open"
    assert analyst.ask("SELECT count(*) FROM jobs") == "1"

    sync(db, "s2", 6, "j2", "j3", lock_timeout=5)  # must neither wait for nor fail on the analyst

    # The analyst's session still answers, from the version it opened; new readers see the new one.
    assert analyst.ask("SELECT count(*) FROM jobs") == "1"
    assert published_jobs(db) == 3
    # Same in-process: a notebook's connection kept open across a publish.
    notebook = open_for_analysis(db)
    sync(db, "s3", 11, "j4")
    assert notebook.execute("SELECT count(*) FROM jobs").fetchall() == [(3,)]
    assert published_jobs(db) == 4
    notebook.close()


def test_a_read_write_analyst_cannot_block_the_writer_and_loses_its_writes(
    tmp_path: Path, children: list[Child]
) -> None:
    db = tmp_path / "archive.duckdb"
    sync(db, "s1", 1, "j1")
    analyst = Child(ANALYST, str(db), "rw")
    children.append(analyst)
    assert analyst.read() == "open"
    assert analyst.ask("CREATE TABLE scratch AS SELECT 42 AS answer") == "1"  # rows written
    assert analyst.ask("SELECT answer FROM scratch") == "42"

    sync(db, "s2", 6, "j2", lock_timeout=5)

    assert analyst.ask("SELECT count(*) FROM jobs") == "1"  # still on its old file
    reader = open_for_analysis(db)
    assert reader.execute("SELECT count(*) FROM jobs").fetchall() == [(2,)]
    tables = {name for (name,) in reader.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert "scratch" not in tables
    reader.close()


def test_a_stale_wal_beside_the_published_copy_is_cleared(tmp_path: Path) -> None:
    db = tmp_path / "archive.duckdb"
    sync(db, "s1", 1, "j1")
    # An analyst's read-write session that died without checkpointing leaves a WAL behind.
    crash = "import duckdb, os, sys; c = duckdb.connect(sys.argv[1]); c.execute('CREATE TABLE t AS SELECT 1'); os._exit(0)"
    subprocess.run([sys.executable, "-c", crash, str(db)], check=True, cwd=REPO)
    assert ArchivePaths.for_db(db).published_wal.exists()
    sync(db, "s2", 6, "j2")
    assert not ArchivePaths.for_db(db).published_wal.exists()
    assert published_jobs(db) == 2


def test_failed_publish_keeps_data_and_publishes_next_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "archive.duckdb"
    sync(db, "s1", 1, "j1")

    def full_disk(paths: ArchivePaths) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("jobs_pipeline.archive.writer.publish_store", full_disk)
    with caplog.at_level(logging.WARNING, logger="jobs_pipeline.archive.writer"):
        sync(db, "s2", 6, "j2")
    assert "publishing" in caplog.text and "No space left" in caplog.text
    assert published_jobs(db) == 1  # analysts still see the previous version
    monkeypatch.undo()
    sync(db, "s3", 11)
    assert published_jobs(db) == 2


def test_an_exception_in_the_block_publishes_nothing_and_releases_the_lock(tmp_path: Path) -> None:
    db = tmp_path / "archive.duckdb"
    sync(db, "s1", 1, "j1")
    before = db.read_bytes()
    with pytest.raises(RuntimeError, match="planner exploded"), open_writer(db) as conn:
        apply_capture(conn, make_result("s2", at(minutes=6), [make_job("j2", "PENDING")]))
        raise RuntimeError("planner exploded")
    assert db.read_bytes() == before
    sync(db, "s3", 11, lock_timeout=0)  # lock free again; publishes the committed s2 as well
    assert published_jobs(db) == 2


def test_newer_archive_is_refused_without_writing(tmp_path: Path) -> None:
    db = tmp_path / "archive.duckdb"
    sync(db, "s1", 1, "j1")
    store = ArchivePaths.for_db(db).store
    conn = duckdb.connect(str(store))
    conn.execute("INSERT INTO schema_version VALUES ('*', 99, now(), 'from the future')")
    conn.close()
    store_bytes, published_bytes = store.read_bytes(), db.read_bytes()

    with pytest.raises(
        ArchiveVersionError, match=rf"schema version 99 .* only knows up to version {SCHEMA_VERSION}"
    ):
        sync(db, "s2", 6, "j2")
    assert store.read_bytes() == store_bytes and db.read_bytes() == published_bytes


def test_newer_published_archive_without_store_is_refused_and_left_alone(tmp_path: Path) -> None:
    db = tmp_path / "archive.duckdb"
    sync(db, "s1", 1, "j1")
    paths = ArchivePaths.for_db(db)
    conn = duckdb.connect(str(paths.store))
    conn.execute("INSERT INTO schema_version VALUES ('*', ?, now(), 'next release')", [SCHEMA_VERSION + 1])
    conn.close()
    paths.store.replace(db)  # as if only a newer release's published copy existed
    with pytest.raises(ArchiveVersionError):
        sync(db, "s2", 6, "j2")
    assert not paths.store.exists()


def test_a_foreign_duckdb_file_is_not_adopted(tmp_path: Path) -> None:
    db = tmp_path / "archive.duckdb"
    conn = duckdb.connect(str(db))
    conn.execute("CREATE TABLE invoices (id INTEGER)")
    conn.close()
    with pytest.raises(ArchiveError, match="not a jobs_pipeline archive"):
        sync(db, "s1", 1, "j1")
    assert not ArchivePaths.for_db(db).store.exists()


def test_unwritable_locations_fail_before_any_work(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(ArchiveNotWritableError, match="not writable"):
        check_writable(blocker / "archive.duckdb")
    with pytest.raises(ArchiveNotWritableError):
        sync(blocker / "archive.duckdb", "s1", 1, "j1")
    with pytest.raises(ArchiveNotWritableError, match="is a directory"):
        check_writable(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_directory_is_reported(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(ArchiveNotWritableError):
            check_writable(locked / "archive.duckdb")
    finally:
        locked.chmod(0o700)
