"""Property-based merge invariants: random lifecycles, observed by random polls, applied in order."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobs_pipeline.api.models import Job
from jobs_pipeline.archive.lifecycle import rank
from jobs_pipeline.archive.merge import apply_capture
from jobs_pipeline.capture.types import CaptureResult, Observation
from jobs_pipeline_tests.test_archive_builders import T0, make_job, make_result, memory_archive, rows


@dataclass(frozen=True)
class Lifecycle:
    job_id: str
    created: int  # seconds after T0
    start_after: int | None  # None: never starts
    finish_after: int | None  # None: never finishes
    final: str  # DONE | ERROR
    reports_started: bool  # whether the API fills startedAt

    def moment(self, seconds: int) -> datetime:
        return T0 + timedelta(seconds=seconds, milliseconds=123)

    @property
    def started(self) -> int | None:
        return None if self.start_after is None else self.created + self.start_after

    @property
    def completed(self) -> int | None:
        if self.finish_after is None:
            return None
        return (self.started if self.started is not None else self.created) + self.finish_after

    def state_at(self, t: int) -> Job | None:
        """The job as the API would return it at time t (None before its creation)."""
        if t < self.created:
            return None
        started, completed = self.started, self.completed
        running = started is not None and started <= t
        done = completed is not None and completed <= t
        progress: int | None = None
        updated = self.created
        status = "PENDING"
        if running:
            assert started is not None
            status, progress = "IN_PROGRESS", min(99, (t - started) // 60)
            updated = started + 60 * progress
        if done:
            assert completed is not None
            status, updated = self.final, completed
            progress = 100 if self.final == "DONE" else progress
        return make_job(
            self.job_id,
            status,
            created=self.moment(self.created),
            updated=self.moment(updated),
            started=self.moment(started)
            if running and self.reports_started and started is not None
            else None,
            completed=self.moment(completed) if done and completed is not None else None,
            progress=progress,
            error="failed" if done and self.final == "ERROR" else None,
        )


lifecycles = st.builds(
    Lifecycle,
    job_id=st.just(""),
    created=st.integers(0, 600),
    start_after=st.none() | st.integers(0, 900),
    finish_after=st.none() | st.integers(1, 900),
    final=st.sampled_from(["DONE", "ERROR"]),
    reports_started=st.booleans(),
)


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[Lifecycle], list[CaptureResult]]:
    specs = [
        Lifecycle(f"job-{i}", s.created, s.start_after, s.finish_after, s.final, s.reports_started)
        for i, s in enumerate(draw(st.lists(lifecycles, min_size=1, max_size=4)))
    ]
    poll_times = sorted(set(draw(st.lists(st.integers(0, 2400), min_size=1, max_size=7))))
    results = []
    for number, t in enumerate(poll_times):
        observed_at = T0 + timedelta(seconds=t)
        observations = []
        for spec in specs:
            job = spec.state_at(t)
            if job is None or not draw(st.booleans()):
                continue  # not created yet, or missed by this poll
            observations.append(Observation(job, observed_at))
            earlier = spec.state_at(t - draw(st.integers(0, 120)))
            if earlier is not None and draw(st.booleans()):
                # Also seen in another slice, a page earlier: an older or equal state in the same result.
                observations.insert(0, Observation(earlier, observed_at - timedelta(seconds=1)))
        results.append(make_result(f"sync-{number}", observed_at, observations))
    return specs, results


@cache
def shared_archive() -> duckdb.DuckDBPyConnection:
    # One archive for every example, a fresh tenant each: fast, and tenants must not interfere.
    return memory_archive()


def tenant_dump(conn: duckdb.DuckDBPyConnection, tenant: str) -> dict[str, list[tuple[object, ...]]]:
    return {
        table: conn.execute(f"SELECT * FROM {table} WHERE tenant = ? ORDER BY ALL", [tenant]).fetchall()
        for table in ("jobs", "job_snapshots", "job_status_changes", "sync_runs")
    }


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_merge_invariants(history: tuple[list[Lifecycle], list[CaptureResult]]) -> None:
    specs, results = history
    conn = shared_archive()
    tenant = f"prop-{uuid.uuid4().hex}"
    for result in results:
        result.tenant = tenant

    previous_snapshots: list[tuple[object, ...]] = []
    for result in results:
        apply_capture(conn, result)
        snapshots = tenant_dump(conn, tenant)["job_snapshots"]
        # (b) snapshots are only ever appended
        assert set(previous_snapshots) <= set(snapshots) and len(snapshots) >= len(previous_snapshots)
        previous_snapshots = snapshots

    # (b) re-applying everything, or the last result under a new sync id, appends nothing
    settled = tenant_dump(conn, tenant)
    for result in results:
        assert apply_capture(conn, result).replayed
    results[-1].sync_id = "sync-again"
    again = apply_capture(conn, results[-1])
    assert (again.snapshots, again.status_changes) == (0, 0)
    after = tenant_dump(conn, tenant)
    assert {t: after[t] for t in ("job_snapshots", "job_status_changes")} == {
        t: settled[t] for t in ("job_snapshots", "job_status_changes")
    }

    jobs = {row["job_id"]: row for row in rows(conn, "SELECT * FROM jobs WHERE tenant = ?", [tenant])}
    expected_states = expected_history(results)
    # (a) one row per observed job, with the latest observed status
    assert set(jobs) == set(expected_states)
    for job_id, states in expected_states.items():
        assert jobs[job_id]["status"] == states[-1][0]
        snapshot_count = rows(
            conn, "SELECT count(*) AS n FROM job_snapshots WHERE tenant = ? AND job_id = ?", [tenant, job_id]
        )[0]["n"]
        assert snapshot_count == len(states), "one snapshot per observed change, no more, no less"

    for job_id, row in jobs.items():
        # (c) status changes chain along the lifecycle and end at the job's status
        changes = rows(
            conn,
            """
            SELECT c.from_status, c.to_status, c.changed_at, c.changed_after, c.changed_before, c.source
            FROM job_status_changes c JOIN sync_runs s USING (tenant, sync_id)
            WHERE c.tenant = ? AND c.job_id = ? ORDER BY s.observed_at, c.step
            """,
            [tenant, job_id],
        )
        assert changes[0]["from_status"] is None and changes[0]["to_status"] == "PENDING"
        for before, after_change in itertools.pairwise(changes):
            assert after_change["from_status"] == before["to_status"]
        for change in changes[1:]:
            assert rank(change["to_status"]) > rank(change["from_status"])
        assert changes[-1]["to_status"] == row["status"]
        for change in changes:
            assert change["changed_after"] <= change["changed_before"]
            if change["source"] == "api_timestamp":
                assert change["changed_at"] == change["changed_after"] == change["changed_before"]
            else:
                assert change["changed_at"] is None
        # (d) the API's timestamps are kept exactly, in their order
        spec = next(s for s in specs if s.job_id == job_id)
        assert row["created_at"] == spec.moment(spec.created)
        if row["completed_at"] is not None:
            assert spec.completed is not None and row["completed_at"] == spec.moment(spec.completed)
        stamps = [row["created_at"], row["started_at"], row["completed_at"]]
        present = [s for s in stamps if s is not None]
        assert present == sorted(present)


def expected_history(results: list[CaptureResult]) -> dict[str, list[tuple[object, ...]]]:
    """Per job, the distinct successive states the syncs revealed (the latest observation of each sync)."""
    states: dict[str, list[tuple[object, ...]]] = {}
    for result in results:
        latest: dict[str, Job] = {}
        for obs in result.observations:
            current = latest.get(obs.job.id)
            if current is None or (obs.job.updated_at, rank(obs.job.status)) >= (
                current.updated_at,
                rank(current.status),
            ):
                latest[obs.job.id] = obs.job
        for job_id, job in latest.items():
            state = (job.status, job.progress, job.updated_at, job.error)
            seen = states.setdefault(job_id, [])
            if not seen or seen[-1] != state:
                seen.append(state)
    return states
