"""The archive's error types: each says what went wrong and what to do, never a bare DuckDB trace."""

from __future__ import annotations


class ArchiveError(Exception):
    """Base class: anything the archive layer refuses or cannot do."""


class ArchiveBusyError(ArchiveError):
    """Another process holds the writer lock longer than the caller agreed to wait."""


class ArchiveVersionError(ArchiveError):
    """The archive was written by a newer jobs_pipeline (schema version beyond this code's)."""


class ArchiveNotWritableError(ArchiveError):
    """The archive's directory (or its private writer directory) cannot be written."""


class ArchiveNotFoundError(ArchiveError):
    """No published archive exists at the given path yet."""
