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

Analysts use `open_for_analysis` (reader.py), or `duckdb -readonly <path>` from the CLI. Even a
read-write session on the published copy cannot block the writer (the rename replaces the file
under it), but whatever it writes there is discarded at the next publish.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from jobs_pipeline.archive.errors import ArchiveError
from jobs_pipeline.archive.lock import DEFAULT_LOCK_TIMEOUT, writer_lock
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
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Lock, open (creating or upgrading) the private store, yield a read-write connection, publish.

    Raises ArchiveNotWritableError, ArchiveBusyError, ArchiveVersionError (all ArchiveError).
    `publish=False` skips publishing (e.g. several writes in a row; the last one publishes).
    """
    paths = check_writable(db_path)
    label = str(paths.published)
    with writer_lock(paths.lock_file, timeout=lock_timeout, archive_label=label):
        conn = _open_store(paths, label)
        try:
            yield conn
        except BaseException:
            _close_quietly(conn)
            raise
        conn.execute("CHECKPOINT")
        conn.close()
        if publish:
            publish_or_warn(paths)


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
        configure_session(conn)
        migrate(conn, archive_label=label)
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
