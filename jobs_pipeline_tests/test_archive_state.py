"""load_capture_state and load_open_gaps: the planner's view of one tenant."""

from __future__ import annotations

from datetime import UTC, timedelta

import duckdb

from jobs_pipeline.archive.merge import apply_capture
from jobs_pipeline.archive.state import KNOWN_WINDOW, load_capture_state, load_open_gaps
from jobs_pipeline.capture.types import Gap, KnownJob, Vanished
from jobs_pipeline_tests.test_archive_builders import at, make_job, make_result, memory_archive


def test_empty_archive_means_backfill() -> None:
    state = load_capture_state(memory_archive(), "acme")
    assert (state.tenant, state.last_observed_at, state.last_coverage_complete, state.known) == (
        "acme",
        None,
        False,
        {},
    )


def test_state_comes_from_the_newest_sync_and_live_recent_jobs() -> None:
    conn = memory_archive()
    day = 24 * 60
    apply_capture(
        conn,
        make_result(
            "s1",
            at(minutes=1),
            [
                make_job("old", "DONE", completed=at(seconds=5)),
                make_job("killed", "PENDING", created=at(minutes=day - 20)),
            ],
        ),
    )
    last = at(minutes=2 * day)
    apply_capture(
        conn,
        make_result(
            "s2",
            last - timedelta(minutes=5),
            [
                make_job("edge", "PENDING", created=last - KNOWN_WINDOW),
                make_job(
                    "fresh",
                    "IN_PROGRESS",
                    created=last - timedelta(hours=1),
                    started=last - timedelta(minutes=30),
                ),
            ],
        ),
    )
    gone = Vanished("killed", "KILLED", last_seen_at=at(minutes=1), missing_at=last)
    apply_capture(conn, make_result("s3", last, vanished=[gone], gaps=[Gap("DONE", "cap", None, None)]))

    state = load_capture_state(conn, "acme")
    assert state.last_observed_at == last and state.last_observed_at.tzinfo is UTC
    assert state.last_coverage_complete is False
    # "old" was created before the window, "killed" has vanished: neither may still be listed.
    assert set(state.known) == {"edge", "fresh"}
    assert state.known["fresh"] == KnownJob(
        job_id="fresh",
        target_id="doc-1",
        job_type="EXTRACTION",
        status="IN_PROGRESS",
        created_at=last - timedelta(hours=1),
        updated_at=last - timedelta(minutes=30),
        last_seen_at=last - timedelta(minutes=5),
    )
    assert all(t.tzinfo is UTC for t in (state.known["edge"].created_at, state.known["edge"].last_seen_at))


def test_state_is_per_tenant() -> None:
    conn = memory_archive()
    apply_capture(conn, make_result("s1", at(minutes=1), [make_job("a", "PENDING")], tenant="acme"))
    apply_capture(
        conn, make_result("s9", at(minutes=3), [make_job("g", "PENDING")], tenant="globex", gaps=[])
    )
    acme = load_capture_state(conn, "acme")
    assert (acme.last_observed_at, set(acme.known)) == (at(minutes=1), {"a"})
    assert set(load_capture_state(conn, "globex").known) == {"g"}
    assert load_capture_state(conn, "initech").last_observed_at is None


def test_open_gaps_are_those_of_the_tenants_last_sync() -> None:
    conn = memory_archive()
    assert load_open_gaps(conn, "acme") == []  # no sync yet
    older = [Gap("DONE", "cap", None, at(minutes=-30))]
    latest = [
        Gap("PENDING", "cap", at(minutes=-90, ms=7), at(minutes=-30)),
        Gap("known-active", "behind-cap", at(minutes=-80), at(minutes=-70)),
        Gap("*", "budget", None, None),
    ]
    apply_capture(conn, make_result("s1", at(minutes=1), gaps=older))
    apply_capture(conn, make_result("s2", at(minutes=6), gaps=latest))
    apply_capture(conn, make_result("g1", at(minutes=9), tenant="globex"))
    gaps = load_open_gaps(conn, "acme")
    assert gaps == latest  # slice, reason and exact bounds survive the JSON round trip
    assert all(g.created_from.tzinfo is not None for g in gaps if g.created_from is not None)
    assert load_open_gaps(conn, "globex") == []  # its last sync saw everything
    apply_capture(conn, make_result("s3", at(minutes=11)))
    assert load_open_gaps(conn, "acme") == []  # a later complete sync closes them


def test_state_of_forty_thousand_jobs_loads_fast() -> None:
    conn = memory_archive()
    apply_capture(conn, make_result("s1", at(minutes=1), [make_job("seed", "PENDING")]))
    # Bulk-fill jobs in SQL (the merge path has its own benchmark).
    conn.execute(
        """
        INSERT INTO hot.jobs
        SELECT 'acme', 'job-' || i, 'user', 'doc-' || (i % 97), 'EMBEDDING', 'DONE', false, 100, NULL, NULL,
               $t0 + to_milliseconds(i), NULL, $t0 + to_milliseconds(i + 5000), $t0 + to_milliseconds(i + 5000),
               $t1, $t1, NULL, 's1'
        FROM range(40000) AS r(i)
        """,
        {"t0": at(minutes=-60), "t1": at(minutes=1)},
    )
    # How fast is measured in benchmarks/, never asserted here (the suite runs on loaded machines).
    state = load_capture_state(conn, "acme")
    assert len(state.known) == 40001
    assert state.known["job-39999"].updated_at == at(minutes=-60) + timedelta(milliseconds=39999 + 5000)


def test_state_reads_through_any_session_time_zone() -> None:
    conn = memory_archive()
    apply_capture(conn, make_result("s1", at(minutes=1), [make_job("a", "PENDING", created=at(ms=5))]))
    conn.execute("SET TimeZone = 'Asia/Tokyo'")
    state = load_capture_state(conn, "acme")
    assert state.last_observed_at == at(minutes=1) and state.last_observed_at.tzinfo is UTC
    assert state.known["a"].created_at == at(ms=5)
    assert isinstance(conn, duckdb.DuckDBPyConnection)
