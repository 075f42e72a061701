"""Schema migrations: numbered steps, upgrade of a real v1 archive without losing a row."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import duckdb

from jobs_pipeline.archive import SCHEMA_VERSION, apply_capture, open_for_analysis, open_writer
from jobs_pipeline.archive.migrations import MIGRATIONS, migrate, schema_version
from jobs_pipeline.archive.paths import ArchivePaths
from jobs_pipeline_tests.test_archive_builders import T0, make_job, make_result, rows

FIXTURE = Path(__file__).parent / "fixtures" / "archive_v1.sql"
V1_TABLES = ("sync_runs", "jobs", "job_snapshots", "job_status_changes")


def v1_archive(path: Path) -> None:
    conn = duckdb.connect(str(path))
    conn.execute(FIXTURE.read_text(encoding="utf-8"))
    conn.close()


def v1_dump(conn: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[object, ...]]]:
    """Each v1 table restricted to its v1 columns, in a stable order."""
    dump = {}
    for table in V1_TABLES:
        columns = [
            name
            for (name,) in conn.execute(
                "SELECT column_name FROM duckdb_columns() WHERE schema_name = 'main' AND table_name = ? "
                "AND column_name NOT IN ('rate_limited', 'rejects', 'source', 'plan_notes') ORDER BY column_index",
                [table],
            ).fetchall()
        ]
        dump[table] = conn.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY ALL").fetchall()
    return dump


def schema_description(conn: duckdb.DuckDBPyConnection) -> list[tuple[object, ...]]:
    return conn.execute(
        """
        SELECT c.table_name, c.column_index, c.column_name, c.data_type, c.is_nullable, c.column_default,
               c.comment, t.comment
        FROM duckdb_columns() c JOIN duckdb_tables() t USING (database_name, schema_name, table_name)
        ORDER BY c.schema_name, c.table_name, c.column_index
        """
    ).fetchall()


def test_migrations_are_numbered_in_order() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, SCHEMA_VERSION + 1))
    assert SCHEMA_VERSION == 6


def test_fixture_is_exactly_what_migration_1_creates() -> None:
    from_fixture = duckdb.connect()
    from_fixture.execute(FIXTURE.read_text(encoding="utf-8"))
    from_migration = duckdb.connect()
    from_migration.execute(MIGRATIONS[0].sql)
    assert schema_description(from_fixture) == schema_description(from_migration)
    assert schema_version(from_fixture) == 1


def test_fresh_archive_gets_every_migration_once() -> None:
    conn = duckdb.connect()
    assert migrate(conn) == (0, SCHEMA_VERSION)
    assert migrate(conn) == (SCHEMA_VERSION, SCHEMA_VERSION)
    applied = rows(conn, "SELECT version, description FROM schema_version ORDER BY version")
    assert [r["version"] for r in applied] == [1, 2, 3, 4, 5, 6]
    assert all(r["description"] for r in applied)


def test_v1_archive_upgrades_to_the_current_version_without_losing_a_row(tmp_path: Path) -> None:
    db = tmp_path / "archive.duckdb"
    v1_archive(db)  # an archive published by the v1 release, no private store yet
    before = duckdb.connect(str(db), read_only=True)
    original = v1_dump(before)
    (running,) = rows(before, "SELECT * FROM jobs WHERE job_id = 'cm-running'")
    before.close()
    assert sum(len(r) for r in original.values()) == 3 + 4 + 6 + 8

    with open_writer(db) as conn:
        assert schema_version(conn) == SCHEMA_VERSION
        assert v1_dump(conn) == original
        old_runs = rows(conn, "SELECT rate_limited, rejects, plan_notes FROM sync_runs")
        assert old_runs and all(
            r == {"rate_limited": None, "rejects": None, "plan_notes": None} for r in old_runs
        )
        assert rows(conn, "SELECT count(*) AS n FROM rejected_records") == [{"n": 0}]

        # The upgraded archive keeps working with the history it inherited.
        finished = make_job(
            "cm-running",
            "DONE",
            created=running["created_at"],
            started=running["started_at"],
            completed=running["updated_at"] + timedelta(minutes=5),
            job_type="SYNC",
            target_id="fld-7",
            user_id="u-2",
        )
        observed = running["last_seen_at"] + timedelta(minutes=5)
        summary = apply_capture(conn, make_result("v2-sync-3", observed, [finished], rate_limited=1))
        assert (summary.jobs_new, summary.jobs_changed, summary.status_changes) == (0, 1, 1)
        (change,) = rows(conn, "SELECT * FROM job_status_changes WHERE sync_id = 'v2-sync-3'")
        assert (change["from_status"], change["to_status"]) == ("IN_PROGRESS", "DONE")
        row = rows(conn, "SELECT first_seen_at, status FROM jobs WHERE job_id = 'cm-running'")[0]
        assert row["first_seen_at"] == running["first_seen_at"] and row["status"] == "DONE"

    # The published copy is now the upgraded archive, for analysts too.
    reader = open_for_analysis(db)
    assert schema_version(reader) == SCHEMA_VERSION
    assert reader.execute("SELECT count(*) FROM job_snapshots").fetchall() == [(7,)]
    assert reader.execute("SELECT rate_limited FROM sync_runs WHERE sync_id = 'v2-sync-3'").fetchall() == [
        (1,)
    ]
    reader.close()
    assert ArchivePaths.for_db(db).store.is_file()


def gaps_comment(conn: duckdb.DuckDBPyConnection) -> str:
    ((comment,),) = conn.execute(
        "SELECT comment FROM duckdb_columns() WHERE schema_name = 'main' AND table_name = 'sync_runs' "
        "AND column_name = 'gaps'"
    ).fetchall()
    return str(comment)


def test_a_v2_archive_gets_the_v3_gaps_comment_and_keeps_its_rows() -> None:
    conn = duckdb.connect()
    for migration in MIGRATIONS[:2]:  # an archive left at version 2 by the previous release
        conn.execute(migration.sql)
    conn.execute("INSERT INTO schema_version VALUES ('*', 1, now(), 'v1'), ('*', 2, now(), 'v2')")
    insert_old_sync_run(conn, "v2-sync")
    assert "cap|budget|error" in gaps_comment(conn)
    assert migrate(conn) == (2, SCHEMA_VERSION)
    assert "cap|budget|error" not in gaps_comment(conn) and "behind-cap" in gaps_comment(conn)
    assert rows(conn, "SELECT sync_id FROM sync_runs") == [{"sync_id": "v2-sync"}]


def insert_old_sync_run(conn: duckdb.DuckDBPyConnection, sync_id: str) -> None:
    """A sync_runs row as a version 2 or 3 release wrote it (no plan_notes column yet)."""
    conn.execute(
        "INSERT INTO sync_runs (tenant, sync_id, started_at, finished_at, observed_at, requests, pages,"
        " jobs_seen, jobs_new, jobs_changed, jobs_vanished, coverage_complete, gaps, status, error,"
        " rate_limited, rejects) VALUES ('default', ?, ?, ?, ?, 3, 3, 1, 1, 0, 0, true, '[]', 'ok', NULL, 0, 0)",
        [sync_id, T0, T0, T0],
    )


def test_a_v3_archive_gets_plan_notes_null_for_old_syncs_and_filled_for_new_ones() -> None:
    conn = duckdb.connect()
    for migration in MIGRATIONS[:3]:  # an archive left at version 3 by the previous release
        conn.execute(migration.sql)
    conn.execute(
        "INSERT INTO schema_version VALUES ('*', 1, now(), 'v1'), ('*', 2, now(), 'v2'), ('*', 3, now(), 'v3')"
    )
    insert_old_sync_run(conn, "v3-sync")
    assert migrate(conn) == (3, SCHEMA_VERSION)
    apply_capture(
        conn,
        make_result(
            "v4-sync",
            T0 + timedelta(minutes=10),
            [make_job("j1", "PENDING")],
            plan_notes={"requests.head": 1},
        ),
    )
    stored = rows(conn, "SELECT sync_id, plan_notes FROM sync_runs ORDER BY sync_id")
    assert [(r["sync_id"], r["plan_notes"] and json.loads(r["plan_notes"])) for r in stored] == [
        ("v3-sync", None),
        ("v4-sync", {"requests.head": 1}),
    ]


def test_a_v3_archive_gets_snapshot_sources_and_the_webhook_events_table() -> None:
    conn = duckdb.connect()
    for migration in MIGRATIONS[:3]:  # an archive left at version 3 by the previous release
        conn.execute(migration.sql)
    conn.execute(
        "INSERT INTO schema_version VALUES ('*', 1, now(), 'v1'), ('*', 2, now(), 'v2'), ('*', 3, now(), 'v3')"
    )
    conn.execute(
        "INSERT INTO job_snapshots VALUES ('acme', 's', 'j1', ?, 'PENDING', NULL, ?, NULL, NULL, '{}')",
        [T0, T0],
    )
    assert migrate(conn) == (3, SCHEMA_VERSION)
    # Every snapshot written before version 4 came from a poll.
    assert rows(conn, "SELECT job_id, source FROM job_snapshots") == [{"job_id": "j1", "source": "poll"}]
    assert rows(conn, "SELECT count(*) AS n FROM webhook_events") == [{"n": 0}]


def test_an_upgraded_archive_is_sealed_by_the_next_syncs_and_loses_nothing(tmp_path: Path) -> None:
    db = tmp_path / "archive.duckdb"
    v1_archive(db)
    before = duckdb.connect(str(db), read_only=True)
    original = v1_dump(before)
    ((last_seen,),) = before.execute("SELECT max(last_seen_at) FROM jobs").fetchall()
    before.close()
    # Three days later (the fixture's jobs have long left the API's window): the sync that upgrades
    # the archive also seals the fixture's days, as the archive's own write path does.
    later = last_seen + timedelta(days=3)
    with open_writer(db, lock_timeout=5) as conn:
        summary = apply_capture(conn, make_result("after-upgrade", later, [], tenant="acme"))
    assert summary.sealed_files >= len(V1_TABLES)
    with open_for_analysis(db) as reader:
        after = v1_dump(reader)
        after["sync_runs"] = [r for r in after["sync_runs"] if r[1] != "after-upgrade"]
        assert after == original  # every row, through the views, now read from Parquet
        sealed = {
            t for (t,) in reader.execute("SELECT DISTINCT table_name FROM sealed_partitions").fetchall()
        }
        assert set(V1_TABLES) <= sealed
        ((sealed_jobs,),) = reader.execute(
            "SELECT sum(rows) FROM sealed_partitions WHERE table_name = 'jobs'"
        ).fetchall()
    store = duckdb.connect(str(ArchivePaths.for_db(db).store), read_only=True)
    ((hot_jobs,),) = store.execute("SELECT count(*) FROM hot.jobs").fetchall()
    store.close()
    # Each row in one place; the hot one is globex's, a tenant that has not synced since (sealing
    # runs for the syncing tenant, at its own server time).
    assert (sealed_jobs, hot_jobs) == (len(original["jobs"]) - 1, 1)
