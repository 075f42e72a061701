"""The DuckDB archive: the history of every job, written by one sync at a time, read by anyone.

Public API:
* `open_writer(db_path, *, lock_timeout=120)` - context manager yielding the writer's connection
  (lock, migrations, publish on exit); `check_writable(db_path)` to fail fast before any API call.
* `apply_capture(conn, result) -> SyncSummary` - apply one CaptureResult atomically.
* `load_capture_state(conn, tenant) -> CaptureState` and `load_open_gaps(conn, tenant) -> list[Gap]` -
  the planner's input.
* `open_for_analysis(db_path)` - read-only connection on the published copy.
* Errors: `ArchiveError` and its subclasses.

How the single writer and the analysts coexist is described in `writer.py` and `publish.py`.

Names are imported lazily (PEP 562): `from jobs_pipeline.archive.lock import ...` or importing the
error types must not pay for DuckDB, Polars and Arrow, e.g. in a CLI that only checks a path.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from jobs_pipeline.archive.state import load_capture_state, load_open_gaps
    from jobs_pipeline.archive.summary import SyncSummary
    from jobs_pipeline.archive.writer import open_writer

_EXPORTS: dict[str, str] = {
    "ArchiveBusyError": "errors",
    "ArchiveError": "errors",
    "ArchiveNotFoundError": "errors",
    "ArchiveNotWritableError": "errors",
    "ArchiveVersionError": "errors",
    "DEFAULT_LOCK_TIMEOUT": "lock",
    "apply_capture": "merge",
    "apply_capture_frames": "merge",
    "migrate": "migrations",
    "schema_version": "migrations",
    "ArchivePaths": "paths",
    "check_writable": "paths",
    "open_for_analysis": "reader",
    "SCHEMA_VERSION": "schema",
    "load_capture_state": "state",
    "load_open_gaps": "state",
    "SyncSummary": "summary",
    "open_writer": "writer",
}

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
    "load_open_gaps",
    "migrate",
    "open_for_analysis",
    "open_writer",
    "schema_version",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
