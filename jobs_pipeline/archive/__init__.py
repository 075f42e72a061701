"""The DuckDB archive: the history of every job, written by one sync at a time, read by anyone.

Public API:
* `open_writer(db_path, *, lock_timeout=120)` - context manager yielding the writer's connection
  (lock, migrations, publish on exit); `check_writable(db_path)` to fail fast before any API call.
* `apply_capture(conn, result) -> SyncSummary` - apply one CaptureResult atomically.
* `load_capture_state(conn, tenant) -> CaptureState` - the planner's input.
* `open_for_analysis(db_path)` - read-only connection on the published copy.
* Errors: `ArchiveError` and its subclasses.

How the single writer and the analysts coexist is described in `writer.py` and `publish.py`.
"""

from jobs_pipeline.archive.errors import (
    ArchiveBusyError,
    ArchiveError,
    ArchiveNotFoundError,
    ArchiveNotWritableError,
    ArchiveVersionError,
)
from jobs_pipeline.archive.lock import DEFAULT_LOCK_TIMEOUT
from jobs_pipeline.archive.merge import apply_capture, apply_capture_frames
from jobs_pipeline.archive.migrations import migrate, schema_version
from jobs_pipeline.archive.paths import ArchivePaths, check_writable
from jobs_pipeline.archive.reader import open_for_analysis
from jobs_pipeline.archive.schema import SCHEMA_VERSION
from jobs_pipeline.archive.state import load_capture_state
from jobs_pipeline.archive.summary import SyncSummary
from jobs_pipeline.archive.writer import open_writer

__all__ = [
    "DEFAULT_LOCK_TIMEOUT",
    "SCHEMA_VERSION",
    "ArchiveBusyError",
    "ArchiveError",
    "ArchiveNotFoundError",
    "ArchiveNotWritableError",
    "ArchivePaths",
    "ArchiveVersionError",
    "SyncSummary",
    "apply_capture",
    "apply_capture_frames",
    "check_writable",
    "load_capture_state",
    "migrate",
    "open_for_analysis",
    "open_writer",
    "schema_version",
]
