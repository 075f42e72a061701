"""Where the archive's files live, derived from the one path users pass (`--db`).

The path a user passes is the ANALYST-FACING published copy. The single writer never opens it:
it works on a private store in a hidden directory beside it and publishes a copy when done
(see `publish.py` and `writer.py` for why). For `--db demo-output/archive.duckdb`:

    demo-output/archive.duckdb                          published copy (analysts, read-only)
    demo-output/.archive.duckdb.writer/archive.duckdb   private store (the writer only)
    demo-output/.archive.duckdb.writer/lock             flock'ed by the writer; holds pid + start
    demo-output/.archive.duckdb.publish-<pid>.tmp       a copy being published (same filesystem)
    demo-output/archive.sealed/<table>/tenant=<t>/day=<YYYY-MM-DD>/data.parquet
                                                        sealed history, immutable (see layout.py)
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from jobs_pipeline.archive.errors import ArchiveNotWritableError


@dataclass(frozen=True, slots=True)
class ArchivePaths:
    """Every file of one archive, computed from the published path."""

    published: Path

    @classmethod
    def for_db(cls, db_path: str | os.PathLike[str]) -> ArchivePaths:
        return cls(Path(db_path).expanduser().absolute())

    @property
    def directory(self) -> Path:
        return self.published.parent

    @property
    def writer_dir(self) -> Path:
        return self.directory / f".{self.published.name}.writer"

    @property
    def store(self) -> Path:
        """The writer's private DuckDB file: the archive's source of truth."""
        return self.writer_dir / "archive.duckdb"

    @property
    def store_wal(self) -> Path:
        return self.writer_dir / "archive.duckdb.wal"

    @property
    def lock_file(self) -> Path:
        return self.writer_dir / "lock"

    @property
    def published_wal(self) -> Path:
        """Only ever created by an analyst's read-WRITE session on the published copy."""
        return self.directory / f"{self.published.name}.wal"

    @property
    def sealed_root(self) -> Path:
        """The immutable day files (ZSTD Parquet, hive-style folders), shared by every published version."""
        return self.directory / f"{self.published.stem}.sealed"

    @property
    def compact_temp(self) -> Path:
        return self.writer_dir / "archive.duckdb.compacting"

    def publish_temp(self, pid: int) -> Path:
        # Same directory as the published file, so that os.replace is an atomic rename.
        return self.directory / f".{self.published.name}.publish-{pid}.tmp"

    @property
    def publish_temp_glob(self) -> str:
        return f".{self.published.name}.publish-*.tmp"


def check_writable(db_path: str | os.PathLike[str]) -> ArchivePaths:
    """Create the archive's directories and prove both can be written, or raise ArchiveNotWritableError.

    Cheap and side-effect free apart from creating the directories: call it before the first API
    request so that a sync never spends its rate budget only to fail at the end.
    """
    paths = ArchivePaths.for_db(db_path)
    if paths.published.is_dir():
        raise ArchiveNotWritableError(f"{paths.published} is a directory; --db must name a DuckDB file")
    for directory in (paths.directory, paths.writer_dir):
        try:
            directory.mkdir(parents=True, exist_ok=True)
            # os.access lies for root and on some network filesystems: really write a file.
            fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=directory)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise ArchiveNotWritableError(
                f"cannot write the archive at {paths.published}: {directory} is not writable ({exc.strerror or exc})"
            ) from exc
    if paths.published.exists() and not os.access(paths.published, os.R_OK):
        raise ArchiveNotWritableError(f"cannot read the published archive {paths.published}")
    return paths


def remove_quietly(path: Path) -> None:
    """Best-effort unlink for clean-up paths that must not mask the real error."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)
