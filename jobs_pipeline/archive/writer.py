"""`open_writer`: the one way to write the archive, without ever getting in an analyst's way.

The mechanism (a product requirement: a scheduled sync must not fail because someone left a
notebook open):

* The path users pass (`--db demo-output/archive.duckdb`) is the analyst-facing PUBLISHED copy.
  The writer never opens it. It works on a private store beside it,
  `<dir>/.<name>.writer/archive.duckdb` (`ArchivePaths`).
* Writers serialise on an exclusive `flock` of `<dir>/.<name>.writer/lock`, waiting at most
  `lock_timeout` seconds, then fail with `ArchiveBusyError` naming the holder's pid and start time.
* Opening runs the schema migrations (refusing an archive newer than this code with
  `ArchiveVersionError`, before anything is written).
* On a clean exit the store is CHECKPOINTed and closed, then published: copied to a temp file next
  to the published path, fsynced, and renamed over it with `os.replace`. Readers holding the old
  file keep their old inode and go on working; new readers see the new version whole.
* If publishing fails (disk full, permissions), the data is still committed in the private store:
  a warning is logged and the next successful write publishes it.
* On an exception inside the block nothing is published (the transaction in `apply_capture` has
  already been rolled back) and the exception propagates.
* `discard_empty_on_error=True` (what `run_sync` asks for): when opening or the block fails and the
  store holds no applied sync (a failed first sync), the writer directory is removed, lock file
  included, BEFORE the lock is released: no half-made archive stays behind, and no other sync can
  have taken the lock and started on that store in between. Syncs waiting on the removed lock file
  notice and start again on a new one (`lock.py`).

Analysts use `open_for_analysis` (reader.py), or `duckdb -readonly <path>` from the CLI. Even a
read-write session on the published copy cannot block the writer (the rename replaces the file
under it), but whatever it writes there is discarded at the next publish.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from jobs_pipeline.archive.compact import compact_store, needs_compaction
from jobs_pipeline.archive.errors import ArchiveError
from jobs_pipeline.archive.lock import DEFAULT_LOCK_TIMEOUT, writer_lock
from jobs_pipeline.archive.manifest import announce_sealed_root
from jobs_pipeline.archive.migrations import migrate
from jobs_pipeline.archive.paths import ArchivePaths, check_writable, remove_quietly
from jobs_pipeline.archive.publish import publish as publish_store
from jobs_pipeline.archive.publish import seed_store_from_published
from jobs_pipeline.archive.session import configure_session

log = logging.getLogger(__name__)


@contextmanager
def open_writer(
    db_path: str | os.PathLike[str],
    *,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    publish: bool = True,
    discard_empty_on_error: bool = False,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Lock, open (creating or upgrading) the private store, yield a read-write connection, publish.

    Raises ArchiveNotWritableError, ArchiveBusyError, ArchiveVersionError (all ArchiveError).
    `publish=False` skips publishing (e.g. several writes in a row; the last one publishes).
    `discard_empty_on_error=True` removes the writer directory when opening or the block fails on a
    store that holds no applied sync (a failed first sync leaves nothing behind).
    """
    try:
        paths = check_writable(db_path)
    except BaseException:
        if discard_empty_on_error:
            # Not locked: only an EMPTY writer directory (one this call may just have made) goes.
            with contextlib.suppress(OSError):
                ArchivePaths.for_db(db_path).writer_dir.rmdir()
        raise
    label = str(paths.published)
    # Never on ArchiveBusyError: what is in the directory then belongs to the sync holding the lock.
    with writer_lock(paths.lock_file, timeout=lock_timeout, archive_label=label):
        store_existed = paths.store.exists()
        try:
            conn = _open_store(paths, label)
        except BaseException:
            if discard_empty_on_error and not store_existed:
                _discard_writer_dir(paths)
            raise
        try:
            yield conn
        except BaseException:
            # Checked now, under the lock, on the store itself: another process's first sync may
            # have committed before we got the lock, and that store is not ours to remove.
            empty = discard_empty_on_error and _holds_no_sync(conn)
            _close_quietly(conn)
            if empty:
                _discard_writer_dir(paths)
            raise
        conn.execute("CHECKPOINT")
        compact = needs_compaction(conn)
        conn.close()
        if compact:
            compact_or_warn(paths)
        if publish:
            publish_or_warn(paths)


def _holds_no_sync(conn: duckdb.DuckDBPyConnection) -> bool:
    try:
        return conn.execute("SELECT count(*) FROM hot.sync_runs").fetchall()[0][0] == 0
    except duckdb.Error:
        return False  # cannot tell: keep it


def _discard_writer_dir(paths: ArchivePaths) -> None:
    """Remove the writer directory, lock file included, while the caller still holds the lock."""
    shutil.rmtree(paths.writer_dir, ignore_errors=True)


def compact_or_warn(paths: ArchivePaths) -> None:
    """Rebuild the store compactly; on failure keep the (valid, just bigger) store and warn."""
    try:
        compact_store(paths)
    except (OSError, duckdb.Error) as exc:
        log.warning("compacting the archive store %s failed (%s); it stays as it is", paths.store, exc)


def publish_or_warn(paths: ArchivePaths) -> bool:
    """Publish; on failure log a warning (the data is safe in the private store) and return False."""
    try:
        publish_store(paths)
    except (OSError, ArchiveError) as exc:
        log.warning(
            "archive data is committed but publishing %s failed (%s); analysts see the previous "
            "version until the next successful sync publishes it",
            paths.published,
            exc,
        )
        return False
    return True


def _open_store(paths: ArchivePaths, label: str) -> duckdb.DuckDBPyConnection:
    seeded = seed_store_from_published(paths)
    try:
        conn = duckdb.connect(str(paths.store))
    except duckdb.Error as exc:
        raise ArchiveError(f"cannot open the archive store {paths.store}: {exc}") from exc
    try:
        try:
            configure_session(conn)
            migrate(conn, archive_label=label)
            announce_sealed_root(conn, paths.sealed_root)
        except duckdb.Error as exc:
            # A truncated or overwritten store opens, then fails on its first read: say so in one
            # line (the file is left as it is, for a person to look at or restore).
            detail = " ".join(str(exc).split())[:200]
            raise ArchiveError(
                f"the archive store {paths.store} is damaged or not a DuckDB archive ({type(exc).__name__}: "
                f"{detail}): restore it from a backup, or move it away to rebuild from the published copy"
            ) from None
    except BaseException:
        _close_quietly(conn)
        if seeded:
            # Leave the directory exactly as we found it: the published copy is still the only one.
            remove_quietly(paths.store)
            remove_quietly(paths.store_wal)
        raise
    return conn


def _close_quietly(conn: duckdb.DuckDBPyConnection) -> None:
    try:
        conn.close()
    except duckdb.Error as exc:  # never mask the error that brought us here
        log.warning("closing the archive store failed: %s", exc)
