"""monitor.py: wait_for_job and job_statistics over scripted pages on a fake clock."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from jobs_pipeline.api.models import Job, Page
from jobs_pipeline.api.monitor import (
    MIN_POLL_INTERVAL,
    JobFailedError,
    JobNotFoundError,
    JobVanishedError,
    WaitTimeoutError,
    job_statistics,
    wait_for_job,
)
from jobs_pipeline.api.parse import parse_records
from jobs_pipeline_tests.test_api_fakes import FakeClock, Recorder, job_record, make_client, ok

OBSERVED = datetime(2024, 10, 29, 9, 0, tzinfo=UTC)


class ScriptedSource:
    """A PageSource answering each poll from a list of record lists (the last one repeats)."""

    def __init__(self, *polls: list[Any]) -> None:
        self.polls = list(polls)
        self.calls: list[dict[str, Any]] = []

    def list_jobs(
        self, *, status: str | None = None, target_id: str | None = None, limit: int = 100, offset: int = 0
    ) -> Page:
        self.calls.append({"status": status, "target_id": target_id, "limit": limit, "offset": offset})
        records = self.polls.pop(0) if len(self.polls) > 1 else self.polls[0]
        jobs, rejects = parse_records(records)
        return Page(jobs, rejects, OBSERVED, "server", status, target_id, offset, limit, len(records))


def extraction(
    status: str, progress: int | None = None, updated: str = "10:35:00.000", **kw: Any
) -> dict[str, Any]:
    return job_record(
        "cm4ext",
        type="EXTRACTION",
        status=status,
        progress=progress,
        updatedAt=f"2024-10-28T{updated}Z",
        **kw,
    )


def embedding(status: str) -> dict[str, Any]:
    return job_record("cm4emb", type="EMBEDDING", status=status, createdAt="2024-10-28T10:40:00.000Z")


def run_wait(source: ScriptedSource, clock: FakeClock, **kwargs: Any) -> Job:
    return wait_for_job(source, "cm4doc1", sleep=clock.sleep, clock=clock, **kwargs)


def test_returns_the_job_when_it_is_done_and_reports_each_change() -> None:
    source = ScriptedSource(
        [extraction("PENDING")],
        [extraction("IN_PROGRESS", 10, "10:36:00.000")],
        [extraction("IN_PROGRESS", 80, "10:37:00.000")],
        [extraction("DONE", 100, "10:38:00.000")],
    )
    clock = FakeClock()
    updates: list[Job] = []
    job = run_wait(source, clock, on_update=updates.append)
    assert job.status == "DONE" and job.id == "cm4ext"
    assert [(u.status, u.progress) for u in updates] == [
        ("PENDING", None),
        ("IN_PROGRESS", 10),
        ("IN_PROGRESS", 80),
        ("DONE", 100),
    ]
    assert clock.sleeps == [2.0, 2.0, 2.0]
    assert all(
        call == {"status": None, "target_id": "cm4doc1", "limit": 100, "offset": 0} for call in source.calls
    )


def test_job_type_is_filtered_on_our_side_never_sent_as_the_type_parameter() -> None:
    # The newest job on the target is an EMBEDDING; we wait for the EXTRACTION below it.
    source = ScriptedSource([embedding("IN_PROGRESS"), extraction("DONE", 100)])
    job = run_wait(source, FakeClock(), job_type="EXTRACTION")
    assert job.type == "EXTRACTION"
    assert all(call["status"] is None for call in source.calls)


def test_error_raises_job_failed_with_the_job() -> None:
    source = ScriptedSource(
        [extraction("IN_PROGRESS", 50)], [extraction("ERROR", 50, error="PDF is encrypted")]
    )
    with pytest.raises(JobFailedError, match="PDF is encrypted") as caught:
        run_wait(source, FakeClock())
    assert caught.value.job.status == "ERROR"


def test_polls_back_off_while_nothing_changes_and_reset_on_change() -> None:
    same = [extraction("IN_PROGRESS", 40)]
    source = ScriptedSource(
        same, same, same, same, [extraction("IN_PROGRESS", 41, "10:36:00.000")], [extraction("DONE")]
    )
    clock = FakeClock()
    run_wait(source, clock)
    assert clock.sleeps == [2.0, 3.0, 4.5, 6.75, 2.0]
    assert min(clock.sleeps) >= MIN_POLL_INTERVAL


def test_backoff_is_capped_at_thirty_seconds() -> None:
    clock = FakeClock()
    with pytest.raises(WaitTimeoutError):
        run_wait(ScriptedSource([extraction("PENDING")]), clock, timeout=600.0)
    assert max(clock.sleeps) == 30.0


def test_timeout_after_the_job_was_seen_is_a_wait_timeout_with_its_last_state() -> None:
    clock = FakeClock()
    with pytest.raises(WaitTimeoutError, match="still IN_PROGRESS, 70% after 10 s") as caught:
        run_wait(ScriptedSource([extraction("IN_PROGRESS", 70)]), clock, timeout=10.0)
    assert isinstance(caught.value, TimeoutError) and not isinstance(caught.value, JobNotFoundError)
    assert caught.value.job is not None and caught.value.job.progress == 70
    assert sum(clock.sleeps) <= 10.0 + MIN_POLL_INTERVAL


def test_no_job_keeps_polling_then_raises_not_found() -> None:
    clock = FakeClock()
    source = ScriptedSource([])
    with pytest.raises(JobNotFoundError, match="no EXTRACTION job for target cm4doc1") as caught:
        run_wait(source, clock, job_type="EXTRACTION", timeout=20.0)
    assert isinstance(caught.value, TimeoutError) and caught.value.job is None
    assert len(source.calls) > 1


def test_job_that_appears_late_is_followed() -> None:
    source = ScriptedSource([], [], [extraction("DONE")])
    assert run_wait(source, FakeClock()).status == "DONE"


def test_followed_job_is_not_hijacked_by_a_newer_one_of_the_same_type() -> None:
    newer = job_record("cm4newer", type="EXTRACTION", status="DONE", createdAt="2024-10-28T11:00:00.000Z")
    source = ScriptedSource(
        [extraction("IN_PROGRESS", 5)], [newer, extraction("IN_PROGRESS", 6)], [newer, extraction("DONE")]
    )
    assert run_wait(source, FakeClock()).id == "cm4ext"


def test_a_followed_job_that_vanishes_was_killed() -> None:
    source = ScriptedSource([extraction("IN_PROGRESS", 30)], [embedding("PENDING")])
    with pytest.raises(JobVanishedError, match="most likely KILLED") as caught:
        run_wait(source, FakeClock())
    assert caught.value.job.id == "cm4ext"


def test_absence_from_a_full_page_is_not_taken_as_vanishing() -> None:
    full_of_others = [job_record(f"other{index}", status="DONE") for index in range(100)]
    source = ScriptedSource([extraction("IN_PROGRESS", 30)], full_of_others, [extraction("DONE")])
    assert run_wait(source, FakeClock()).status == "DONE"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"poll_interval": 1.0}, "at least 2.0 s"), ({"timeout": -1.0}, "must not be negative")],
)
def test_refuses_polling_faster_than_the_doc_allows(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        run_wait(ScriptedSource([]), FakeClock(), **kwargs)


def test_monitor_works_over_the_real_client() -> None:
    recorder = Recorder(ok([extraction("PENDING")]), ok([extraction("DONE", 100, "10:40:00.000")]))
    client, clock = make_client(recorder)
    with client:
        job = wait_for_job(client, "cm4doc1", job_type="EXTRACTION", sleep=clock.sleep, clock=clock)
    assert job.status == "DONE"
    assert recorder.queries()[0] == {"targetId": "cm4doc1", "limit": "100", "offset": "0"}


def test_job_statistics_counts_by_status_and_type_like_the_vendor() -> None:
    records = [
        job_record("a", type="EXTRACTION", status="DONE"),
        job_record("b", type="EXTRACTION", status="ERROR"),
        job_record("c", type="SYNC", status="PENDING"),
        job_record("d", type="NEW_KIND", status="PAUSED"),
        {"id": "bad"},
    ]
    source = ScriptedSource(records)
    stats = job_statistics(source, limit=50)
    assert source.calls == [{"status": None, "target_id": None, "limit": 50, "offset": 0}]
    assert stats.total == 4 and stats.rejected == 1
    assert stats.by_status == {"PENDING": 1, "IN_PROGRESS": 0, "DONE": 1, "ERROR": 1, "PAUSED": 1}
    assert stats.by_type == {"EXTRACTION": 2, "SYNC": 1, "NEW_KIND": 1}
    assert (stats.pending, stats.in_progress, stats.done, stats.error) == (1, 0, 1, 1)
    assert stats.observed_at == OBSERVED


def test_statistics_over_an_empty_window() -> None:
    stats = job_statistics(ScriptedSource([]))
    assert stats.total == 0 and stats.by_type == {} and set(stats.by_status.values()) == {0}
