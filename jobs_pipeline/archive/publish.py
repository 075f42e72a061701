"""Publishing: atomically replace the analyst-facing copy with the writer's private store.

DuckDB admits either ONE read-write process or several read-only ones on a file. If the writer
worked on the file analysts open, a notebook left open on it would make the next scheduled sync
fail. So the writer works on a private store (see `paths.py`) and, after each clean write, publishes:

1. copy the private file (checkpointed and closed: no WAL) to a temp file in the published
   file's directory, and fsync it;
2. `os.replace` it onto the published path (an atomic rename on POSIX), then fsync the directory.

A reader that already has the published file open keeps the OLD inode: its session goes on
answering queries from the previous version, and the writer never waits for it. A reader that
opens the path afterwards gets the new version, whole. No reader ever sees a half-written file.

A stale `<published>.wal` can only come from an analyst's read-WRITE session on the published copy
(`duckdb <path>` without `-readonly`). It belongs to the replaced file and DuckDB refuses to open a
file with a foreign WAL, so publishing deletes it: such writes are discarded at every publish.
"""

from __future__ import annotations

import os
import shutil

from jobs_pipeline.archive.durable import fsync_directory, fsync_file
from jobs_pipeline.archive.errors import ArchiveError
from jobs_pipeline.archive.paths import ArchivePaths, remove_quietly


def publish(paths: ArchivePaths) -> None:
    """Replace the published copy with the private store. Raises OSError/ArchiveError on failure."""
    if paths.store_wal.exists() and paths.store_wal.stat().st_size > 0:
        # The store was not cleanly checkpointed: a copy of the main file alone would miss data.
        raise ArchiveError(f"{paths.store} has an un-checkpointed WAL; not publishing it")
    _remove_stale_temps(paths)
    temp = paths.publish_temp(os.getpid())
    try:
        shutil.copyfile(paths.store, temp)
        fsync_file(temp)
        paths.published_wal.unlink(missing_ok=True)
        os.replace(temp, paths.published)
    except BaseException:
        remove_quietly(temp)
        raise
    fsync_directory(paths.directory)


def seed_store_from_published(paths: ArchivePaths) -> bool:
    """Adopt an existing published archive as the private store when the store does not exist yet.

    Happens once: for an archive written by an older jobs_pipeline, or after the hidden writer
    directory was removed. Returns True when a copy was made.
    """
    if paths.store.exists() or not paths.published.is_file():
        return False
    temp = paths.writer_dir / "archive.duckdb.seeding"
    try:
        shutil.copyfile(paths.published, temp)
        if paths.published_wal.is_file():
            # Replay writes someone made to the published copy before it was ever published by us.
            shutil.copyfile(paths.published_wal, paths.store_wal)
        fsync_file(temp)
        os.replace(temp, paths.store)
    except BaseException:
        remove_quietly(temp)
        remove_quietly(paths.store_wal)
        raise
    return True


def _remove_stale_temps(paths: ArchivePaths) -> None:
    # Called under the writer lock: any temp left there is from a publish that crashed.
    for stale in paths.directory.glob(paths.publish_temp_glob):
        remove_quietly(stale)
