"""apply_capture: the merge semantics, one behaviour per test, on an in-memory archive."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import duckdb
import pytest

from jobs_pipeline.api.models import RejectedRecord
from jobs_pipeline.archive.errors import ArchiveError
from jobs_pipeline.archive.merge import apply_capture
from jobs_pipeline.archive.state import load_capture_state
from jobs_pipeline.capture.types import Gap, Observation, Vanished
from jobs_pipeline_tests.test_archive_builders import (
    T0,
    at,
    changes_of,
    count,
    dump_tables,
    job_row,
    make_job,
    make_result,
    memory_archive,
    rows,
)


@pytest.fixture
def conn() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = memory_archive()
    yield connection
    connection.close()


def steps(changes: list[dict[str, object]]) -> list[tuple[object, object, object]]:
    return [(c["from_status"], c["to_status"], c["source"]) for c in changes]


def test_new_job_gets_row_snapshot_and_creation_change(conn: duckdb.DuckDBPyConnection) -> None:
    job = make_job("j1", "PENDING", created=at(ms=123), progress=0, metadata={"pages": 3})
    summary = apply_capture(conn, make_result("s1", at(minutes=1), [job]))

    assert (summary.jobs_seen, summary.jobs_new, summary.jobs_changed, summary.snapshots) == (1, 1, 0, 1)
    row = job_row(conn, "j1")
    assert row["status"] == "PENDING" and row["status_inferred"] is False
    assert row["created_at"] == at(ms=123)
    assert row["first_seen_at"] == row["last_seen_at"] == at(minutes=1)
    assert row["last_sync_id"] == "s1" and row["vanished_at"] is None
    assert json.loads(row["metadata"]) == {"pages": 3}
    (change,) = changes_of(conn, "j1")
    assert (change["from_status"], change["to_status"], change["source"]) == (
        None,
        "PENDING",
        "api_timestamp",
    )
    assert change["changed_at"] == change["changed_after"] == change["changed_before"] == at(ms=123)
    (run,) = rows(conn, "SELECT * FROM sync_runs")
    assert (run["jobs_seen"], run["jobs_new"], run["jobs_changed"], run["jobs_vanished"]) == (1, 1, 0, 0)
    assert run["status"] == "ok" and run["error"] is None and run["coverage_complete"] is True


def test_status_change_with_started_at_is_exact(conn: duckdb.DuckDBPyConnection) -> None:
    apply_capture(conn, make_result("s1", at(minutes=1), [make_job("j1", "PENDING")]))
    started = make_job("j1", "IN_PROGRESS", started=at(minutes=2, ms=7), progress=10)
    summary = apply_capture(conn, make_result("s2", at(minutes=6), [started]))

    assert (summary.jobs_new, summary.jobs_changed) == (0, 1)
    change = changes_of(conn, "j1")[-1]
    assert (change["from_status"], change["to_status"], change["source"]) == (
        "PENDING",
        "IN_PROGRESS",
        "api_timestamp",
    )
    assert change["changed_at"] == change["changed_after"] == change["changed_before"] == at(minutes=2, ms=7)
    row = job_row(conn, "j1")
    assert (row["status"], row["started_at"], row["last_seen_at"]) == (
        "IN_PROGRESS",
        at(minutes=2, ms=7),
        at(minutes=6),
    )
    assert row["first_seen_at"] == at(minutes=1)


def test_status_change_without_timestamp_gets_the_poll_interval(conn: duckdb.DuckDBPyConnection) -> None:
    apply_capture(conn, make_result("s1", at(minutes=1), [make_job("j1", "PENDING")]))
    running = make_job("j1", "IN_PROGRESS", updated=at(minutes=3))  # the API omitted startedAt
    apply_capture(conn, make_result("s2", at(minutes=6), [running]))

    change = changes_of(conn, "j1")[-1]
    assert (change["from_status"], change["to_status"], change["source"]) == (
        "PENDING",
        "IN_PROGRESS",
        "poll_interval",
    )
    assert change["changed_at"] is None
    assert (change["changed_after"], change["changed_before"]) == (at(minutes=1), at(minutes=6))


def test_created_and_finished_between_polls_fills_the_lifecycle(conn: duckdb.DuckDBPyConnection) -> None:
    done = make_job(
        "j1", "DONE", created=at(seconds=1), started=at(seconds=2), completed=at(seconds=30), progress=100
    )
    summary = apply_capture(conn, make_result("s1", at(minutes=5), [done]))

    assert summary.status_changes == 3
    changes = changes_of(conn, "j1")
    assert steps(changes) == [
        (None, "PENDING", "api_timestamp"),
        ("PENDING", "IN_PROGRESS", "api_timestamp"),
        ("IN_PROGRESS", "DONE", "api_timestamp"),
    ]
    assert [c["changed_at"] for c in changes] == [at(seconds=1), at(seconds=2), at(seconds=30)]
    assert [c["step"] for c in changes] == [1, 2, 3]
    assert count(conn, "job_snapshots") == 1  # one observation, one snapshot


def test_done_without_started_at_goes_straight_from_pending(conn: duckdb.DuckDBPyConnection) -> None:
    failed = make_job("j1", "ERROR", completed=at(seconds=4), error="boom")
    apply_capture(conn, make_result("s1", at(minutes=5), [failed]))
    assert steps(changes_of(conn, "j1")) == [
        (None, "PENDING", "api_timestamp"),
        ("PENDING", "ERROR", "api_timestamp"),
    ]


def test_skipped_step_without_timestamp_uses_interval_from_previous_sighting(
    conn: duckdb.DuckDBPyConnection,
) -> None:
    apply_capture(conn, make_result("s1", at(minutes=1), [make_job("j1", "PENDING")]))
    # Finished between polls; the API gave startedAt but no completedAt.
    done = make_job("j1", "DONE", started=at(minutes=2), updated=at(minutes=4))
    apply_capture(conn, make_result("s2", at(minutes=6), [done]))
    changes = changes_of(conn, "j1")[1:]
    assert steps(changes) == [
        ("PENDING", "IN_PROGRESS", "api_timestamp"),
        ("IN_PROGRESS", "DONE", "poll_interval"),
    ]
    assert (changes[1]["changed_after"], changes[1]["changed_before"]) == (at(minutes=1), at(minutes=6))


def test_backwards_and_unknown_statuses_are_single_interval_steps(conn: duckdb.DuckDBPyConnection) -> None:
    apply_capture(conn, make_result("s1", at(minutes=1), [make_job("j1", "DONE", completed=at(seconds=9))]))
    retried = make_job("j1", "PENDING", updated=at(minutes=3))
    apply_capture(
        conn, make_result("s2", at(minutes=6), [retried, make_job("j2", "PAUSED", created=at(minutes=2))])
    )

    back = changes_of(conn, "j1")[-1]
    assert (back["from_status"], back["to_status"], back["source"]) == ("DONE", "PENDING", "poll_interval")
    assert (back["changed_after"], back["changed_before"]) == (at(minutes=1), at(minutes=6))
    (weird,) = changes_of(conn, "j2")
    assert (weird["from_status"], weird["to_status"], weird["source"]) == (None, "PAUSED", "poll_interval")
    assert (weird["changed_after"], weird["changed_before"]) == (at(minutes=2), at(minutes=6))


def test_progress_change_is_a_snapshot_without_status_change(conn: duckdb.DuckDBPyConnection) -> None:
    apply_capture(
        conn, make_result("s1", at(minutes=1), [make_job("j1", "IN_PROGRESS", started=at(), progress=10)])
    )
    later = make_job("j1", "IN_PROGRESS", started=at(), progress=60, updated=at(minutes=3))
    summary = apply_capture(conn, make_result("s2", at(minutes=6), [later]))
    assert (summary.jobs_changed, summary.snapshots, summary.status_changes) == (1, 1, 0)
    assert [r["progress"] for r in rows(conn, "SELECT progress FROM job_snapshots ORDER BY observed_at")] == [
        10,
        60,
    ]
    assert job_row(conn, "j1")["progress"] == 60


def test_progress_alone_changing_is_a_change(conn: duckdb.DuckDBPyConnection) -> None:
    apply_capture(
        conn, make_result("s1", at(minutes=1), [make_job("j1", "IN_PROGRESS", started=at(), progress=10)])
    )
    same_instant = make_job("j1", "IN_PROGRESS", started=at(), progress=11)  # updatedAt not bumped
    assert apply_capture(conn, make_result("s2", at(minutes=6), [same_instant])).snapshots == 1


def test_unchanged_job_adds_no_snapshot_even_if_metadata_keys_reorder(
    conn: duckdb.DuckDBPyConnection,
) -> None:
    apply_capture(
        conn, make_result("s1", at(minutes=1), [make_job("j1", "PENDING", metadata={"a": 1, "b": 2})])
    )
    same = make_job("j1", "PENDING", metadata={"b": 2, "a": 1})
    summary = apply_capture(conn, make_result("s2", at(minutes=6), [same]))
    assert (summary.jobs_changed, summary.snapshots, summary.status_changes) == (0, 0, 0)
    assert job_row(conn, "j1")["last_seen_at"] == at(minutes=6)
    assert job_row(conn, "j1")["last_sync_id"] == "s2"


def test_metadata_and_owner_changes_reach_the_jobs_row(conn: duckdb.DuckDBPyConnection) -> None:
    apply_capture(conn, make_result("s1", at(minutes=1), [make_job("j1", "PENDING", metadata={"a": 1})]))
    moved = make_job("j1", "PENDING", metadata={"a": 2}, user_id="user-9", updated=at(minutes=2))
    summary = apply_capture(conn, make_result("s2", at(minutes=6), [moved]))
    row = job_row(conn, "j1")
    assert json.loads(row["metadata"]) == {"a": 2}
    assert row["user_id"] == "user-9"
    assert summary.jobs_changed == 1


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("createdAt", {"created": datetime(2099, 1, 1, tzinfo=UTC)}),
        ("type", {"job_type": "SUMMARY"}),
        ("targetId", {"target_id": "doc-2"}),
    ],
)
def test_a_known_job_with_another_immutable_value_is_rejected_and_keeps_its_own(
    conn: duckdb.DuckDBPyConnection, field: str, changes: dict[str, object]
) -> None:
    apply_capture(
        conn, make_result("s1", at(minutes=1), [make_job("j1", "PENDING"), make_job("j2", "PENDING")])
    )
    before = job_row(conn, "j1")
    liar = make_job("j1", "IN_PROGRESS", started=at(minutes=2), **changes)  # type: ignore[arg-type]
    honest = make_job("j2", "IN_PROGRESS", started=at(minutes=2))
    summary = apply_capture(conn, make_result("s2", at(minutes=6), [liar, honest]))
    assert job_row(conn, "j1") == before  # nothing of the contradicting observation was applied
    assert job_row(conn, "j2")["status"] == "IN_PROGRESS"  # the rest of the sync was
    assert (summary.rejects, summary.jobs_changed) == (1, 1)
    reason, payload = conn.execute(
        "SELECT reason, payload::VARCHAR FROM rejected_records WHERE sync_id = 's2' AND job_id = 'j1'"
    ).fetchone() or ("", "")
    assert reason.startswith(f"{field} of known job conflicts with the archive")
    assert '"j1"' in payload
    assert conn.execute("SELECT rejects FROM sync_runs WHERE sync_id = 's2'").fetchall() == [(1,)]
    assert conn.execute("SELECT count(*) FROM job_snapshots WHERE job_id = 'j1'").fetchall() == [(1,)]


def test_unknown_fields_and_millisecond_timestamps_are_kept(conn: duckdb.DuckDBPyConnection) -> None:
    job = make_job("j1", "PENDING", created=at(ms=1))
    raw = {**job.raw, "priority": "high", "createdAt": "2025-03-01T12:00:00.001Z"}
    apply_capture(
        conn, make_result("s1", at(minutes=1), [make_job("j1", "PENDING", created=at(ms=1), raw=raw)])
    )
    (snap,) = rows(conn, "SELECT payload, epoch_ms(updated_at) AS updated_ms FROM job_snapshots")
    assert json.loads(snap["payload"]) == raw
    assert snap["updated_ms"] == int(at(ms=1).timestamp() * 1000)
    assert rows(conn, "SELECT payload->>'priority' AS p FROM job_snapshots")[0]["p"] == "high"


def test_vanished_killed_is_inferred_without_snapshot(conn: duckdb.DuckDBPyConnection) -> None:
    apply_capture(
        conn, make_result("s1", at(minutes=1), [make_job("j1", "IN_PROGRESS", started=at(seconds=3))])
    )
    gone = Vanished("j1", "KILLED", last_seen_at=at(minutes=1), missing_at=at(minutes=6))
    summary = apply_capture(conn, make_result("s2", at(minutes=6), vanished=[gone]))

    assert (summary.jobs_vanished, summary.jobs_killed, summary.jobs_expired, summary.snapshots) == (
        1,
        1,
        0,
        0,
    )
    row = job_row(conn, "j1")
    assert (row["status"], row["status_inferred"], row["vanished_at"]) == ("KILLED", True, at(minutes=6))
    assert row["last_seen_at"] == at(minutes=1)
    change = changes_of(conn, "j1")[-1]
    assert (change["from_status"], change["to_status"], change["source"]) == (
        "IN_PROGRESS",
        "KILLED",
        "inferred",
    )
    assert change["changed_at"] is None
    assert (change["changed_after"], change["changed_before"]) == (at(minutes=1), at(minutes=6))
    assert count(conn, "job_snapshots") == 1
    assert rows(conn, "SELECT jobs_vanished FROM sync_runs WHERE sync_id = 's2'")[0]["jobs_vanished"] == 1


def test_vanished_expired_only_marks_the_job_gone(conn: duckdb.DuckDBPyConnection) -> None:
    apply_capture(conn, make_result("s1", at(minutes=1), [make_job("j1", "DONE", completed=at(seconds=5))]))
    next_day = at(minutes=24 * 60 + 5)
    gone = Vanished("j1", "EXPIRED", last_seen_at=at(minutes=1), missing_at=next_day)
    summary = apply_capture(conn, make_result("s2", next_day, vanished=[gone]))
    assert (summary.jobs_killed, summary.jobs_expired, summary.status_changes) == (0, 1, 0)
    row = job_row(conn, "j1")
    assert (row["status"], row["status_inferred"], row["vanished_at"]) == ("DONE", False, next_day)


def test_killed_claim_on_a_finished_job_only_marks_it_gone(conn: duckdb.DuckDBPyConnection) -> None:
    apply_capture(conn, make_result("s1", at(minutes=1), [make_job("j1", "DONE", completed=at(seconds=5))]))
    gone = Vanished("j1", "KILLED", last_seen_at=at(minutes=1), missing_at=at(minutes=6))
    summary = apply_capture(conn, make_result("s2", at(minutes=6), vanished=[gone]))
    assert (summary.jobs_killed, summary.jobs_expired) == (0, 1)
    assert job_row(conn, "j1")["status"] == "DONE"


def test_killed_inference_proved_wrong_is_corrected(conn: duckdb.DuckDBPyConnection) -> None:
    apply_capture(conn, make_result("s1", at(minutes=1), [make_job("j1", "PENDING")]))
    gone = Vanished("j1", "KILLED", last_seen_at=at(minutes=1), missing_at=at(minutes=6))
    apply_capture(conn, make_result("s2", at(minutes=6), vanished=[gone]))
    back = make_job("j1", "IN_PROGRESS", started=at(minutes=8))
    summary = apply_capture(conn, make_result("s3", at(minutes=11), [back]))

    assert (summary.corrections, summary.jobs_changed, summary.snapshots) == (1, 1, 1)
    row = job_row(conn, "j1")
    assert (row["status"], row["status_inferred"], row["vanished_at"]) == ("IN_PROGRESS", False, None)
    assert steps(changes_of(conn, "j1")) == [
        (None, "PENDING", "api_timestamp"),
        ("PENDING", "KILLED", "inferred"),
        ("KILLED", "IN_PROGRESS", "correction"),
    ]
    correction = changes_of(conn, "j1")[-1]
    assert (correction["changed_after"], correction["changed_before"]) == (at(minutes=1), at(minutes=11))


def test_same_job_twice_in_one_result_keeps_the_latest(conn: duckdb.DuckDBPyConnection) -> None:
    pending = make_job("j1", "PENDING")
    running = make_job("j1", "IN_PROGRESS", started=at(seconds=40))
    # Seen PENDING in one slice and IN_PROGRESS in another, the later page first.
    result = make_result(
        "s1", at(minutes=1), [Observation(running, at(minutes=1)), Observation(pending, at(minutes=1))]
    )
    summary = apply_capture(conn, result)
    assert (summary.jobs_seen, summary.snapshots) == (1, 1)
    assert job_row(conn, "j1")["status"] == "IN_PROGRESS"
    assert steps(changes_of(conn, "j1")) == [
        (None, "PENDING", "api_timestamp"),
        ("PENDING", "IN_PROGRESS", "api_timestamp"),
    ]


def test_reapplying_a_result_writes_nothing(conn: duckdb.DuckDBPyConnection) -> None:
    result = make_result(
        "s1",
        at(minutes=1),
        [make_job("j1", "PENDING"), make_job("j2", "DONE", completed=at(seconds=3))],
        rejects=[RejectedRecord(raw={"id": 7}, reason="id is not a string")],
    )
    apply_capture(conn, result)
    before = dump_tables(conn)
    again = apply_capture(conn, result)
    assert again.replayed and (again.snapshots, again.status_changes, again.jobs_new) == (0, 0, 0)
    assert dump_tables(conn) == before


def test_same_observations_under_another_sync_id_add_only_a_sync_run(conn: duckdb.DuckDBPyConnection) -> None:
    jobs = [make_job("j1", "PENDING"), make_job("j2", "DONE", completed=at(seconds=3))]
    apply_capture(conn, make_result("s1", at(minutes=1), jobs))
    summary = apply_capture(conn, make_result("s1-retry", at(minutes=1), jobs))
    assert not summary.replayed
    assert (summary.jobs_seen, summary.jobs_new, summary.jobs_changed, summary.snapshots) == (2, 0, 0, 0)
    assert (count(conn, "job_snapshots"), count(conn, "job_status_changes"), count(conn, "sync_runs")) == (
        2,
        3,
        2,
    )


def test_an_older_result_applied_late_changes_nothing(conn: duckdb.DuckDBPyConnection) -> None:
    old = make_result("s1", at(minutes=1), [make_job("j1", "PENDING")])
    apply_capture(conn, old)
    apply_capture(conn, make_result("s2", at(minutes=6), [make_job("j1", "DONE", completed=at(minutes=4))]))
    before = dump_tables(conn)
    summary = apply_capture(conn, make_result("s1-late", at(minutes=1), [make_job("j1", "PENDING")]))
    assert summary.stale_ignored == 1 and summary.snapshots == 0
    after = dump_tables(conn)
    assert after["jobs"] == before["jobs"] and after["job_snapshots"] == before["job_snapshots"]
    warning = rows(conn, "SELECT error FROM sync_runs WHERE sync_id = 's1-late'")[0]["error"]
    assert "older than the archived state" in warning


def test_vanishing_is_applied_once(conn: duckdb.DuckDBPyConnection) -> None:
    apply_capture(conn, make_result("s1", at(minutes=1), [make_job("j1", "PENDING")]))
    gone = Vanished("j1", "KILLED", last_seen_at=at(minutes=1), missing_at=at(minutes=6))
    apply_capture(conn, make_result("s2", at(minutes=6), vanished=[gone]))
    summary = apply_capture(conn, make_result("s3", at(minutes=11), vanished=[gone]))
    assert summary.jobs_vanished == 0 and count(conn, "job_status_changes") == 2


def test_observation_wins_over_a_vanished_claim_and_unknown_ids_are_ignored(
    conn: duckdb.DuckDBPyConnection,
) -> None:
    apply_capture(conn, make_result("s1", at(minutes=1), [make_job("j1", "PENDING")]))
    claims = [
        Vanished("j1", "KILLED", last_seen_at=at(minutes=1), missing_at=at(minutes=6)),
        Vanished("nobody", "KILLED", last_seen_at=at(minutes=1), missing_at=at(minutes=6)),
    ]
    summary = apply_capture(
        conn, make_result("s2", at(minutes=6), [make_job("j1", "PENDING")], vanished=claims)
    )
    assert summary.jobs_vanished == 0 and job_row(conn, "j1")["status"] == "PENDING"
    assert "unknown to the archive" in (summary.warnings[0] if summary.warnings else "")


def test_plan_notes_are_recorded_with_the_sync(conn: duckdb.DuckDBPyConnection) -> None:
    notes = {"budget": 450, "requests.head": 2, "requests.positions": 3, "head_over_cap": 1}
    summary = apply_capture(
        conn, make_result("s1", at(minutes=1), [make_job("j1", "PENDING")], plan_notes=notes)
    )
    assert summary.plan_notes == notes
    (run,) = rows(conn, "SELECT plan_notes FROM sync_runs")
    assert json.loads(run["plan_notes"]) == notes


def test_rejects_gaps_and_counters_are_recorded(conn: duckdb.DuckDBPyConnection) -> None:
    gaps = [Gap("DONE", "cap", None, at(minutes=-30))]
    rejects = [
        RejectedRecord(raw={"id": "j9", "status": 3}, reason="status is not a string", job_id="j9"),
        RejectedRecord(raw="<html>oops", reason="not JSON"),
    ]
    result = make_result(
        "s1",
        at(minutes=1),
        [make_job("j1", "PENDING")],
        gaps=gaps,
        rejects=rejects,
        requests=9,
        pages=7,
        rate_limited=2,
    )
    summary = apply_capture(conn, result)
    assert (summary.rejects, summary.rate_limited, summary.coverage_complete) == (2, 2, False)
    (run,) = rows(conn, "SELECT * FROM sync_runs")
    assert (run["requests"], run["pages"], run["rate_limited"], run["rejects"]) == (9, 7, 2, 2)
    assert run["coverage_complete"] is False
    assert json.loads(run["gaps"]) == [g.as_json() for g in gaps]
    assert "2 record(s) rejected" in run["error"]
    stored = rows(conn, "SELECT * FROM rejected_records ORDER BY reason")
    assert [(r["job_id"], r["reason"], r["payload"]) for r in stored] == [
        (None, "not JSON", "<html>oops"),
        ("j9", "status is not a string", '{"id":"j9","status":3}'),
    ]
    assert all(r["observed_at"] == at(minutes=1) and r["sync_id"] == "s1" for r in stored)
    assert "coverage INCOMPLETE (1 gap: DONE cap)" in summary.one_line()


def test_tenants_never_mix(conn: duckdb.DuckDBPyConnection) -> None:
    apply_capture(conn, make_result("s1", at(minutes=1), [make_job("j1", "PENDING")], tenant="acme"))
    apply_capture(
        conn,
        make_result("s1", at(minutes=1), [make_job("j1", "DONE", completed=at(seconds=9))], tenant="globex"),
    )
    gone = Vanished("j1", "KILLED", last_seen_at=at(minutes=1), missing_at=at(minutes=6))
    apply_capture(conn, make_result("s2", at(minutes=6), vanished=[gone], tenant="acme"))

    assert job_row(conn, "j1", tenant="acme")["status"] == "KILLED"
    assert job_row(conn, "j1", tenant="globex")["status"] == "DONE"
    assert count(conn, "sync_runs", "acme") == 2 and count(conn, "sync_runs", "globex") == 1
    assert steps(changes_of(conn, "j1", tenant="globex"))[-1] == ("PENDING", "DONE", "api_timestamp")
    assert load_capture_state(conn, "globex").last_observed_at == at(minutes=1)
    assert load_capture_state(conn, "acme").known == {}


def test_an_unknown_vanished_kind_is_refused_before_writing(conn: duckdb.DuckDBPyConnection) -> None:
    bad = Vanished("j1", "DELETED", last_seen_at=T0, missing_at=at(minutes=1))
    with pytest.raises(ArchiveError, match="DELETED"):
        apply_capture(conn, make_result("s1", at(minutes=1), vanished=[bad]))
    assert count(conn, "sync_runs") == 0


def test_one_line_summary_reads_well(conn: duckdb.DuckDBPyConnection) -> None:
    summary = apply_capture(
        conn, make_result("s1", at(minutes=1), [make_job("j1", "PENDING")], requests=4, pages=3)
    )
    assert summary.one_line() == (
        "sync s1 [acme] at 2025-03-01T12:01:00Z: 1 jobs seen (1 new, 0 changed, 0 vanished); "
        "4 requests, 3 pages, 0 rate-limited, 0 rejected; coverage complete"
    )
