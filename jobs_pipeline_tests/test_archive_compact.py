"""Compaction: a store left mostly free by sealing is rebuilt smaller, with everything it held."""

from __future__ import annotations

from contextlib import closing
from datetime import timedelta
from pathlib import Path

import duckdb

from jobs_pipeline.archive import ArchivePaths, apply_capture, open_for_analysis, open_writer
from jobs_pipeline.archive.compact import compact_store, needs_compaction
from jobs_pipeline_tests.test_archive_builders import T0, dump_tables, make_job, make_result


def described(conn: duckdb.DuckDBPyConnection) -> list[tuple[object, ...]]:
    return conn.execute(
        "SELECT schema_name, table_name, column_name, data_type, comment FROM duckdb_columns() "
        "WHERE NOT internal ORDER BY ALL"
    ).fetchall()


def test_a_mostly_free_store_is_rebuilt_smaller_with_the_same_content(tmp_path: Path) -> None:
    db = tmp_path / "archive.duckdb"
    jobs = [make_job(f"j{i:05d}", "DONE", metadata={"pad": "x" * 400}) for i in range(20_000)]
    with open_writer(db) as conn:
        apply_capture(conn, make_result("s1", T0 + timedelta(minutes=1), jobs))
    with open_writer(db) as conn:
        # What sealing does to the hot tables: the sealed days' rows leave (here all of them; DuckDB
        # frees the blocks of row groups left empty at the next checkpoint).
        for table in ("job_snapshots", "job_status_changes", "jobs"):
            conn.execute(f"DELETE FROM hot.{table}")
    paths = ArchivePaths.for_db(db)
    with closing(duckdb.connect(str(paths.store), read_only=True)) as store:
        assert needs_compaction(store, min_bytes=0)
        before_content, before_schema = dump_tables(store), described(store)
    before, after = compact_store(paths)
    assert after < before / 2
    with closing(duckdb.connect(str(paths.store), read_only=True)) as store:
        assert dump_tables(store) == before_content
        assert described(store) == before_schema  # schemas, views, types and comments survive
        assert not needs_compaction(store, min_bytes=0)
    # The writer goes on with the compacted store, and analysts read it.
    with open_writer(db) as conn:
        apply_capture(conn, make_result("s3", T0 + timedelta(minutes=3), [make_job("keep", "DONE")]))
        assert conn.execute("SELECT count(*) FROM sync_runs").fetchall() == [(2,)]
    with closing(open_for_analysis(db)) as reader:
        assert reader.execute("SELECT status FROM jobs").fetchall() == [("DONE",)]
