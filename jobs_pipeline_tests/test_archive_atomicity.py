"""A failure at ANY point of apply_capture leaves every archive table exactly as it was."""

from __future__ import annotations

from typing import Any, cast

import duckdb
import pytest

from jobs_pipeline.api.models import RejectedRecord
from jobs_pipeline.archive.merge import apply_capture
from jobs_pipeline.capture.types import Vanished
from jobs_pipeline_tests.test_archive_builders import at, dump_tables, make_job, make_result, memory_archive


class InjectedFailure(RuntimeError):
    pass


class FailingConnection:
    """Forwards to a real connection and raises once, on its `fail_at`-th database call."""

    COUNTED = ("execute", "sql", "register")

    def __init__(self, real: duckdb.DuckDBPyConnection, fail_at: int) -> None:
        self._real = real
        self._fail_at = fail_at
        self.calls = 0
        self.failed = False

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._real, name)
        if name not in self.COUNTED:
            return attribute

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.calls == self._fail_at:
                self.failed = True
                raise InjectedFailure(f"injected failure at database call {self.calls} ({name})")
            return attribute(*args, **kwargs)

        return counted


def busy_result() -> Any:
    """A result that exercises every write: new, changed, killed, expired, corrected jobs, rejects."""
    return make_result(
        "s3",
        at(minutes=11),
        [
            make_job("new", "PENDING", created=at(minutes=9)),
            make_job("running", "DONE", started=at(minutes=1), completed=at(minutes=10), metadata={"v": 2}),
            make_job("killed-before", "IN_PROGRESS", started=at(minutes=7)),
            make_job("moved", "PENDING", target_id="doc-2", updated=at(minutes=8)),
        ],
        vanished=[
            Vanished("active", "KILLED", last_seen_at=at(minutes=6), missing_at=at(minutes=11)),
            Vanished("finished", "EXPIRED", last_seen_at=at(minutes=6), missing_at=at(minutes=11)),
        ],
        rejects=[RejectedRecord(raw={"id": 1}, reason="bad id")],
    )


def seeded_archive() -> duckdb.DuckDBPyConnection:
    conn = memory_archive()
    apply_capture(
        conn,
        make_result(
            "s1",
            at(minutes=1),
            [
                make_job("running", "IN_PROGRESS", started=at(minutes=1), metadata={"v": 1}),
                make_job("active", "PENDING"),
                make_job("finished", "DONE", completed=at(seconds=30)),
                make_job("killed-before", "PENDING"),
                make_job("moved", "PENDING"),
            ],
        ),
    )
    killed = Vanished("killed-before", "KILLED", last_seen_at=at(minutes=1), missing_at=at(minutes=6))
    apply_capture(
        conn,
        make_result(
            "s2",
            at(minutes=6),
            [make_job("running", "IN_PROGRESS", started=at(minutes=1), metadata={"v": 1}, progress=50)]
            + [make_job(j, "PENDING") for j in ("active", "moved")]
            + [make_job("finished", "DONE", completed=at(seconds=30))],
            vanished=[killed],
        ),
    )
    return conn


def test_every_failure_point_rolls_back_completely() -> None:
    conn = seeded_archive()
    before = dump_tables(conn)
    failure_points = 0
    for fail_at in range(1, 200):
        proxy = FailingConnection(conn, fail_at)
        try:
            summary = apply_capture(cast(duckdb.DuckDBPyConnection, proxy), busy_result())
        except InjectedFailure:
            failure_points += 1
            assert dump_tables(conn) == before, f"archive changed after a failure at call {fail_at}"
            continue
        # No failure injected: every database call of the merge has been tried.
        assert not proxy.failed
        break
    else:  # pragma: no cover
        pytest.fail("apply_capture never completed")
    # The merge really wrote everything the failures were injected between.
    assert failure_points >= 12
    assert (summary.jobs_new, summary.jobs_killed, summary.jobs_expired, summary.corrections) == (1, 1, 1, 1)
    assert dump_tables(conn) != before
    # And the connection is healthy: no transaction left open, no frame left registered.
    conn.execute("BEGIN TRANSACTION")
    conn.execute("ROLLBACK")
    leftovers = conn.execute(
        "SELECT view_name FROM duckdb_views() WHERE view_name LIKE '_jobs_pipeline%'"
    ).fetchall()
    assert leftovers == []


def test_a_failing_statement_inside_duckdb_rolls_back_too() -> None:
    conn = seeded_archive()
    # A NOT NULL column the merge does not fill: DuckDB itself fails the status-change insert,
    # mid-transaction, after the snapshots and jobs rows were already written.
    conn.execute("ALTER TABLE hot.job_status_changes ADD COLUMN tripwire INTEGER DEFAULT 1")
    conn.execute("ALTER TABLE hot.job_status_changes ALTER COLUMN tripwire SET NOT NULL")
    conn.execute("ALTER TABLE hot.job_status_changes ALTER COLUMN tripwire DROP DEFAULT")
    before = dump_tables(conn)
    with pytest.raises(duckdb.ConstraintException):
        apply_capture(conn, busy_result())
    assert dump_tables(conn) == before
