"""Keeping the private store small: rebuild it when sealing has left it mostly free blocks.

Sealing deletes whole days from the hot tables. DuckDB reuses the freed blocks for later writes
but never shrinks the file, and every publish copies the whole file: a store that once held a long
unsealed history (an upgraded archive, a long pause) would be copied at its old size forever.
When free blocks are more than `FREE_RATIO` of a store bigger than `MIN_BYTES` (about once a day in
steady state, when a day leaves the hot window), the store is
rewritten compactly with `COPY FROM DATABASE` (tables, constraints, comments, views and rows) into
a temp file that then replaces it. Runs with the writer lock held and the store closed; a crash
leaves the old store untouched (the temp file is removed by the next attempt).
"""

from __future__ import annotations

import logging
import os

import duckdb

from jobs_pipeline.archive.durable import fsync_directory, fsync_file
from jobs_pipeline.archive.paths import ArchivePaths, remove_quietly
from jobs_pipeline.archive.sqltext import sql_literal

log = logging.getLogger(__name__)

FREE_RATIO = 0.3
MIN_BYTES = 16 * 1024 * 1024


def needs_compaction(conn: duckdb.DuckDBPyConnection, *, min_bytes: int = MIN_BYTES) -> bool:
    """True when the (checkpointed) store is mostly free blocks and big enough to matter."""
    ((total, free, block_size),) = conn.execute(
        "SELECT total_blocks, free_blocks, block_size FROM pragma_database_size() "
        "WHERE database_name = current_database()"
    ).fetchall()
    return total * block_size >= min_bytes and free > FREE_RATIO * total


def compact_store(paths: ArchivePaths) -> tuple[int, int]:
    """Rewrite the closed store compactly; return (bytes before, bytes after)."""
    before = paths.store.stat().st_size
    temp = paths.compact_temp
    remove_quietly(temp)
    conn = duckdb.connect(":memory:")
    try:
        conn.execute(f"ATTACH {sql_literal(str(paths.store))} AS source (READ_ONLY)")
        conn.execute(f"ATTACH {sql_literal(str(temp))} AS compact")
        conn.execute("COPY FROM DATABASE source TO compact")
        conn.execute("DETACH compact")
        conn.execute("DETACH source")
    except BaseException:
        conn.close()
        remove_quietly(temp)
        raise
    conn.close()
    fsync_file(temp)
    os.replace(temp, paths.store)
    fsync_directory(paths.writer_dir)
    after = paths.store.stat().st_size
    log.info("compacted the archive store %s: %d -> %d bytes", paths.store, before, after)
    return before, after
