"""The webhook merge's semantics, one behaviour per test, on an in-memory archive."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs_pipeline.archive.merge import apply_capture
from jobs_pipeline.archive.webhook_merge import merge_webhook_events
from jobs_pipeline.capture.types import Vanished
from jobs_pipeline.webhook.spool import KIND_EVENT, KIND_REJECT, SpoolRecord, record_key
from jobs_pipeline_tests.test_archive_builders import (
    T0,
    dump_tables,
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


def m(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def iso(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event(job_id: str, status: str, when: datetime, **extra: Any) -> SpoolRecord:
    body: dict[str, Any] = {
        "jobId": job_id,
        "status": status,
        "type": "EXTRACTION",
        "targetId": "doc-1",
        "metadata": {},
        "updatedAt": iso(when),
        "createdAt": iso(T0),
    }
    body.update(extra)
    raw = json.dumps(body, sort_keys=True).encode()
    return SpoolRecord(
        key=record_key(raw), kind=KIND_EVENT, received_at=when + timedelta(seconds=1), body=raw.decode()
    )


def sync_with(
    conn: duckdb.DuckDBPyConnection,
    sync_id: str,
    observed: datetime,
    records: list[SpoolRecord],
    jobs: list[Any] = (),
) -> Any:
    def also(c: duckdb.DuckDBPyConnection, summary: Any) -> Any:
        from dataclasses import replace

        got = merge_webhook_events(c, records, tenant="acme", sync_id=sync_id, observed_at=observed)
        return replace(summary, webhook=got)

    return apply_capture(conn, make_result(sync_id, observed, list(jobs)), also=also)


def changes(conn: duckdb.DuckDBPyConnection, job_id: str) -> list[tuple[Any, ...]]:
    return [
        (r["from_status"], r["to_status"], r["changed_at"], r["source"])
        for r in rows(
            conn,
            "SELECT * FROM job_status_changes c JOIN sync_runs s USING (tenant, sync_id) WHERE job_id = ? "
            "ORDER BY s.observed_at, step",
            [job_id],
        )
    ]


def test_unknown_job_is_created_partially_known_with_exact_transitions(
    conn: duckdb.DuckDBPyConnection,
) -> None:
    started, done = m(1), m(2)
    records = [
        event("j1", "IN_PROGRESS", started, startedAt=iso(started)),
        event("j1", "DONE", done, startedAt=iso(started), completedAt=iso(done)),
    ]
    summary = sync_with(conn, "s1", m(3), records)
    assert summary.webhook.created == 1 and summary.webhook.applied == 1
    assert changes(conn, "j1") == [
        (None, "PENDING", T0, "webhook"),
        ("PENDING", "IN_PROGRESS", started, "webhook"),
        ("IN_PROGRESS", "DONE", done, "webhook"),
    ]
    (job,) = rows(conn, "SELECT status, started_at, completed_at, created_at FROM jobs WHERE job_id = 'j1'")
    assert job == {"status": "DONE", "started_at": started, "completed_at": done, "created_at": T0}
    sources = rows(conn, "SELECT DISTINCT source FROM job_snapshots WHERE job_id = 'j1'")
    assert sources == [{"source": "webhook"}]  # partially known: no poll has seen it yet


def test_out_of_order_delivery_gives_the_same_archive(conn: duckdb.DuckDBPyConnection) -> None:
    started, done = m(1), m(2)
    records = [
        event("j1", "IN_PROGRESS", started, startedAt=iso(started)),
        event("j1", "DONE", done, startedAt=iso(started), completedAt=iso(done)),
    ]
    sync_with(conn, "s1", m(3), list(reversed(records)))
    other = memory_archive()
    sync_with(other, "s1", m(3), records)
    ours, theirs = dump_tables(conn), dump_tables(other)
    for table in ("jobs", "job_snapshots", "job_status_changes"):
        assert ours[table] == theirs[table]


def test_draining_twice_and_duplicates_change_nothing(conn: duckdb.DuckDBPyConnection) -> None:
    record = event("j1", "PENDING", T0)
    first = sync_with(conn, "s1", m(1), [record, record])
    assert first.webhook.duplicates == 1 and first.webhook.created == 1
    before = dump_tables(conn)
    again = sync_with(conn, "s2", m(2), [record])
    assert again.webhook.duplicates == 1
    after = dump_tables(conn)
    for table in ("jobs", "job_snapshots", "job_status_changes", "webhook_events"):
        assert after[table] == before[table]


def test_an_event_older_than_the_polled_state_changes_nothing(conn: duckdb.DuckDBPyConnection) -> None:
    done = make_job("j1", "DONE", started=m(1), completed=m(2), updated=m(2))
    apply_capture(conn, make_result("s1", m(3), [done]))
    before = dump_tables(conn)
    summary = sync_with(conn, "s2", m(4), [event("j1", "IN_PROGRESS", m(1), startedAt=iso(m(1)))])
    assert summary.webhook.stale == 1
    after = dump_tables(conn)
    for table in ("jobs", "job_snapshots", "job_status_changes"):
        assert after[table] == before[table]


def test_killed_event_dates_the_inferred_kill_exactly(conn: duckdb.DuckDBPyConnection) -> None:
    running = make_job("j1", "IN_PROGRESS", started=m(1), updated=m(1))
    apply_capture(conn, make_result("s1", m(2), [running]))
    apply_capture(conn, make_result("s2", m(10), vanished=[Vanished("j1", "KILLED", m(2), m(10))]))
    assert changes(conn, "j1")[-1][1:] == ("KILLED", None, "inferred")
    killed_at = m(5)
    summary = sync_with(conn, "s3", m(11), [event("j1", "KILLED", killed_at, startedAt=iso(m(1)))])
    assert summary.webhook.applied == 1
    assert changes(conn, "j1")[-1] == ("IN_PROGRESS", "KILLED", killed_at, "webhook")
    (job,) = rows(conn, "SELECT status, status_inferred FROM jobs WHERE job_id = 'j1'")
    assert job == {"status": "KILLED", "status_inferred": False}


def test_killed_event_before_the_poll_notices(conn: duckdb.DuckDBPyConnection) -> None:
    apply_capture(conn, make_result("s1", m(2), [make_job("j1", "PENDING")]))
    sync_with(conn, "s2", m(6), [event("j1", "KILLED", m(5))])
    assert changes(conn, "j1")[-1] == ("PENDING", "KILLED", m(5), "webhook")
    # The poll then finds it gone: no second KILLED, no inference.
    apply_capture(conn, make_result("s3", m(10), vanished=[Vanished("j1", "KILLED", m(2), m(10))]))
    assert [c[1] for c in changes(conn, "j1")] == ["PENDING", "KILLED"]
    (job,) = rows(conn, "SELECT status, status_inferred FROM jobs WHERE job_id = 'j1'")
    assert job == {"status": "KILLED", "status_inferred": False}


def test_a_poll_confirms_a_webhook_created_job(conn: duckdb.DuckDBPyConnection) -> None:
    sync_with(conn, "s1", m(2), [event("j1", "IN_PROGRESS", m(1), startedAt=iso(m(1)), createdAt=None)])
    done = make_job("j1", "DONE", started=m(1), completed=m(3), updated=m(3), user_id="u-9")
    apply_capture(conn, make_result("s2", m(4), [done]))
    (job,) = rows(conn, "SELECT status, created_at, user_id FROM jobs WHERE job_id = 'j1'")
    assert job == {"status": "DONE", "created_at": T0, "user_id": "u-9"}
    assert {r["source"] for r in rows(conn, "SELECT source FROM job_snapshots WHERE job_id = 'j1'")} == {
        "webhook",
        "poll",
    }
    assert [c[1] for c in changes(conn, "j1")] == ["PENDING", "IN_PROGRESS", "DONE"]


def test_malformed_events_become_rejects_under_the_applying_sync(conn: duckdb.DuckDBPyConnection) -> None:
    bad = SpoolRecord(key=record_key(b"x"), kind=KIND_REJECT, received_at=m(1), body="x", reason="not JSON")
    no_status = b'{"jobId": "j9"}'
    late = event("j2", "DONE", m(0) - timedelta(days=5))
    records = [bad, SpoolRecord(record_key(no_status), KIND_EVENT, m(1), no_status.decode()), late]
    summary = sync_with(conn, "s1", m(2), records)
    assert summary.webhook.rejected == 3
    got = rows(conn, "SELECT sync_id, job_id, reason FROM rejected_records ORDER BY reason")
    assert [r["sync_id"] for r in got] == ["s1"] * 3
    assert {r["job_id"] for r in got} == {None, "j9", "j2"}
    assert rows(conn, "SELECT rejects FROM sync_runs WHERE sync_id = 's1'") == [{"rejects": 3}]
    assert rows(conn, "SELECT count(*) AS n FROM jobs") == [{"n": 0}]


def test_a_failing_merge_rolls_the_sync_back(conn: duckdb.DuckDBPyConnection) -> None:
    before = dump_tables(conn)

    def broken(c: duckdb.DuckDBPyConnection, summary: Any) -> Any:
        merge_webhook_events(c, [event("j1", "PENDING", T0)], tenant="acme", sync_id="s1", observed_at=m(1))
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        apply_capture(conn, make_result("s1", m(1), [make_job("j2", "PENDING")]), also=broken)
    assert dump_tables(conn) == before


LIFECYCLE = ["PENDING", "IN_PROGRESS", "DONE"]


@settings(max_examples=30, deadline=None)
@given(
    order=st.permutations(range(3)), split=st.integers(0, 3), dupes=st.lists(st.integers(0, 2), max_size=3)
)
def test_any_order_any_batching_same_history(order: list[int], split: int, dupes: list[int]) -> None:
    times = [T0, m(1), m(2)]
    extra = {"startedAt": iso(m(1))}
    records = [
        event("j1", s, t, **(extra if i else {}), **({"completedAt": iso(m(2))} if s == "DONE" else {}))
        for i, (s, t) in enumerate(zip(LIFECYCLE, times, strict=True))
    ]
    shuffled = [records[i] for i in order] + [records[i] for i in dupes]
    conn = memory_archive()
    sync_with(conn, "s1", m(3), shuffled[:split])
    sync_with(conn, "s2", m(4), shuffled[split:])
    history = [(c[1], c[2]) for c in changes(conn, "j1")]
    assert history[-1] == ("DONE", m(2))
    # Every exact time is the true one, and the chain ends DONE whatever the order.
    truth = dict(zip(LIFECYCLE, times, strict=True))
    assert all(when is None or when == truth[status] for status, when in history)
    assert rows(conn, "SELECT status FROM jobs") == [{"status": "DONE"}]
    conn.close()
