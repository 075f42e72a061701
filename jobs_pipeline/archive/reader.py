"""`open_for_analysis`: a read-only connection on the PUBLISHED archive, for notebooks, reports, Dagster.

It never touches the writer's private store, so it can stay open for hours without delaying a
sync; after a publish it keeps answering from the version it opened (reconnect to see new data).

It ATTACHes the file to a fresh in-memory database rather than calling
`duckdb.connect(path, read_only=True)`: the latter reuses a process-wide cache keyed by path, so
while an older connection is open in the same process, a "new" connection would silently return
the replaced (old) file instead of the freshly published one.

From the duckdb CLI, analysts should use `duckdb -readonly <path>`. A read-write CLI session on the
published copy does not block the writer either, but its writes are overwritten at the next publish.
"""

from __future__ import annotations

import os

import duckdb

from jobs_pipeline.archive.errors import ArchiveError, ArchiveNotFoundError
from jobs_pipeline.archive.paths import ArchivePaths
from jobs_pipeline.archive.session import configure_session

ANALYSIS_CATALOG = "archive"


def open_for_analysis(db_path: str | os.PathLike[str]) -> duckdb.DuckDBPyConnection:
    """Read-only connection on the published archive; its tables are the default schema (`FROM jobs`)."""
    published = ArchivePaths.for_db(db_path).published
    if not published.is_file():
        raise ArchiveNotFoundError(f"no published archive at {published} yet; run a sync first")
    conn = duckdb.connect(":memory:")
    try:
        configure_session(conn)
        quoted = str(published).replace("'", "''")
        conn.execute(f"ATTACH '{quoted}' AS {ANALYSIS_CATALOG} (READ_ONLY)")
        conn.execute(f"USE {ANALYSIS_CATALOG}")
    except duckdb.Error as exc:
        conn.close()
        raise ArchiveError(f"cannot open the published archive {published}: {exc}") from exc
    return conn
