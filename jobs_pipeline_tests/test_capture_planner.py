"""Planner tests on an in-memory API model: what each sync sees, infers and spends.

The end-to-end versions (HTTP twin + DuckDB) live in test_capture_e2e.py; these are fast enough
for property-based testing of the planner's guarantees.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobs_pipeline.capture.planner import PlannerSettings, capture
from jobs_pipeline.capture.types import CaptureResult, CaptureState, Gap, KnownJob
from jobs_pipeline_tests.fake_api import FakeApi, FakeJob

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def fold(state: CaptureState, result: CaptureResult) -> CaptureState:
    """What the archive would hand the planner next: the same rules, in a few lines."""
    known = dict(state.known)
    for obs in result.observations:
        j = obs.job
        known[j.id] = KnownJob(
            j.id, j.target_id, j.type, j.status, j.created_at, j.updated_at, obs.observed_at
        )
    for v in result.vanished:
        k = known.pop(v.job_id)
        if v.kind == "KILLED":
            # KILLED jobs stay in the archive but not in what the planner must look for.
            pass
        del k
    return CaptureState(
        tenant=state.tenant,
        last_observed_at=result.observed_at,
        last_coverage_complete=result.coverage_complete,
        known=known,
    )


class Runner:
    def __init__(
        self, jobs: list[FakeJob], now: datetime, budget: int = 1000, recheck: timedelta | None = None
    ):
        self.api = FakeApi(jobs, now)
        self.state = CaptureState(tenant="t", last_observed_at=None, last_coverage_complete=True)
        self.gaps: list[Gap] = []
        self.results: list[CaptureResult] = []
        self.settings = PlannerSettings(budget=budget, running_recheck_after=recheck)
        self.killed: set[str] = set()
        self.expired: set[str] = set()

    def sync(self) -> CaptureResult:
        result = capture(self.api, self.state, self.settings, open_gaps=self.gaps)
        self.gaps = result.gaps
        self.state = fold(self.state, result)
        self.results.append(result)
        for v in result.vanished:
            (self.killed if v.kind == "KILLED" else self.expired).add(v.job_id)
        return result

    def advance(self, **delta: float) -> None:
        self.api.now += timedelta(**delta)


def job(
    i: int, created: datetime, run: float | None = 30, queue: float = 0, outcome: str = "DONE", **kw
) -> FakeJob:
    start = created + timedelta(seconds=queue) if run is not None else None
    end = start + timedelta(seconds=run) if start is not None and run is not None else None
    return FakeJob(
        id=f"job{i:06d}",
        target_id=kw.pop("target", f"doc{i}"),
        created=created,
        start=start,
        end=end,
        outcome=outcome,
        **kw,
    )


def test_first_sync_backfills_a_small_window_completely():
    jobs = [job(i, T0 - timedelta(minutes=3 * i)) for i in range(300)]
    r = Runner(jobs, T0)
    result = r.sync()
    assert {o.job.id for o in result.observations} == {
        j.id for j in jobs if j.created > T0 - timedelta(hours=24)
    }
    assert result.coverage_complete
    assert result.requests == 4  # 300 rows, pages overlapping by 5: offsets 0, 95, 190, 285


def test_first_sync_past_the_cap_records_gaps_and_uses_status_slices():
    # 3,000 jobs in 24 h, mostly DONE: the whole list reaches 1,100; slices reach further.
    jobs = [
        job(i, T0 - timedelta(seconds=28 * i + 1), outcome="ERROR" if i % 10 == 0 else "DONE")
        for i in range(3000)
    ]
    r = Runner(jobs, T0)
    result = r.sync()
    seen = {o.job.id for o in result.observations}
    errors = {j.id for j in jobs if j.outcome == "ERROR"}
    assert errors <= seen  # the ERROR slice is short enough to reach all 300
    assert not result.coverage_complete
    assert any(g.slice == "DONE" and g.reason == "cap" for g in result.gaps)
    assert len(seen) > 1100 + 200


def test_jobs_finishing_between_polls_and_created_and_finished_between_polls():
    long_running = job(1, T0 - timedelta(hours=2), run=3 * 3600)  # running through both polls
    jobs = [long_running] + [job(i, T0 - timedelta(minutes=i), run=60) for i in range(2, 400)]
    r = Runner(jobs, T0)
    r.sync()
    # Between polls: one new job created and finished; the long job finishes.
    flash = job(9999, T0 + timedelta(minutes=2), run=20)
    r.api.jobs[flash.id] = flash
    long_running.end = T0 + timedelta(minutes=5)
    r.advance(minutes=10)
    result = r.sync()
    by_id = {o.job.id: o.job for o in result.observations}
    assert by_id[flash.id].status == "DONE" and by_id[flash.id].completed_at == flash.end
    assert by_id[long_running.id].status == "DONE"
    assert result.coverage_complete


def test_killed_while_pending_and_while_running_are_inferred_and_young_only():
    pending = job(1, T0 - timedelta(hours=3), run=None)
    running = job(2, T0 - timedelta(hours=5), run=10 * 3600)
    old = job(3, T0 - timedelta(hours=23, minutes=55), run=10 * 3600)  # will age out
    filler = [job(i, T0 - timedelta(minutes=2 * i), run=30) for i in range(10, 700)]
    r = Runner([pending, running, old, *filler], T0)
    r.sync()
    pending.kill_at = T0 + timedelta(minutes=1)
    running.kill_at = T0 + timedelta(minutes=1)
    r.advance(minutes=10)
    result = r.sync()
    assert {v.job_id: v.kind for v in result.vanished} == {
        pending.id: "KILLED",
        running.id: "KILLED",
        old.id: "EXPIRED",
    } | {v.job_id: "EXPIRED" for v in result.vanished if v.kind == "EXPIRED" and v.job_id != old.id}
    assert old.id in r.expired and old.id not in r.killed


def test_drift_while_paging_skips_nothing():
    jobs = [job(i, T0 - timedelta(seconds=30 * i + 1), run=None if i % 3 else 10) for i in range(900)]
    r = Runner(jobs, T0)
    counter = iter(range(10_000, 20_000))

    def burst_of_new_jobs(request_index: int) -> None:
        # Before every request 40 new jobs arrive (pushing rows down) and 30 pending jobs start
        # (pulling rows up in the PENDING slice).
        for _ in range(40):
            n = next(counter)
            r.api.jobs[f"new{n}"] = FakeJob(f"new{n}", f"t{n}", r.api.now - timedelta(milliseconds=1))
        started = 0
        for j in sorted(r.api.jobs.values(), key=lambda j: j.created):
            if j.start is None and started < 30:
                j.start = r.api.now - timedelta(milliseconds=1)
                started += 1
        r.api.now += timedelta(milliseconds=5)

    r.api.before_request = burst_of_new_jobs
    result = r.sync()
    seen = {o.job.id for o in result.observations}
    originals = {j.id for j in jobs}
    assert originals <= seen, f"missed {len(originals - seen)}"


def test_same_job_in_two_slices_keeps_the_later_state():
    j = job(1, T0 - timedelta(hours=1), run=None)
    filler = [job(i, T0 - timedelta(seconds=20 * i), run=5) for i in range(10, 1500)]
    r = Runner([j, *filler], T0)

    def start_it(request_index: int) -> None:
        if request_index == 12:
            j.start = r.api.now

    r.api.before_request = start_it
    result = r.sync()
    by_id = {o.job.id: o.job for o in result.observations}
    assert by_id[j.id].status == "IN_PROGRESS"


def test_budget_is_never_exceeded_and_exhaustion_is_a_gap():
    jobs = [job(i, T0 - timedelta(seconds=20 * i + 1)) for i in range(4000)]
    r = Runner(jobs, T0, budget=5)
    result = r.sync()
    assert result.requests == 5 == len(r.api.requests)
    assert any(g.reason == "budget" for g in result.gaps)


def test_steady_state_cost_is_near_the_oracle_bound():
    rng = random.Random(3)
    jobs = []
    for i in range(6000):
        created = T0 - timedelta(hours=24) + timedelta(seconds=rng.uniform(0, 30 * 3600))
        jobs.append(job(i, created, run=rng.uniform(5, 300), queue=rng.uniform(0, 20)))
    r = Runner(jobs, T0)
    r.sync()
    spent = bound = 0
    for _ in range(12):
        before = {j.id: j.status_at(r.api.now) for j in jobs}
        r.advance(minutes=10)
        changed = sum(1 for j in jobs if j.status_at(r.api.now) != before[j.id])
        spent += r.sync().requests
        bound += max(1, -(-changed // 100))
    assert spent <= 2.0 * bound, (spent, bound)


@st.composite
def workloads(draw):
    n = draw(st.integers(min_value=1, max_value=400))
    seed = draw(st.integers(min_value=0, max_value=10_000))
    rng = random.Random(seed)
    jobs = []
    for i in range(n):
        created = T0 - timedelta(hours=26) + timedelta(seconds=rng.uniform(0, 29 * 3600))
        queue = rng.choice([0, rng.uniform(0, 600), rng.uniform(0, 7200)])
        run = rng.choice([None, rng.uniform(1, 60), rng.uniform(60, 3600)])
        kill = created + timedelta(seconds=rng.uniform(0, 7200)) if rng.random() < 0.1 else None
        jobs.append(
            job(
                i,
                created,
                run=run,
                queue=queue,
                outcome=rng.choice(["DONE", "ERROR"]),
                kill_at=kill,
                target=f"t{rng.randrange(max(1, n // 3))}",
            )
        )
    return jobs


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    jobs=workloads(),
    polls=st.integers(min_value=2, max_value=8),
    minutes=st.sampled_from([5, 10, 30]),
    recheck=st.sampled_from([None, timedelta(minutes=25)]),
)
def test_every_state_held_at_a_poll_instant_is_captured_and_killed_is_never_guessed(
    jobs, polls, minutes, recheck
):
    r = Runner(jobs, T0, recheck=recheck)
    for _ in range(polls):
        t = r.api.now
        result = r.sync()
        assert result.coverage_complete  # below the caps everything is reachable
        # After each sync the archive agrees with the API at that poll instant, job by job;
        # with deferred rechecks, a job seen running may lag its completion by the recheck delay.
        for j in jobs:
            status = j.status_at(t)
            # (within EXPIRY_AMBIGUITY of the 24 h edge a job is deliberately called expired)
            if status is None or status == "KILLED" or j.created <= t - timedelta(hours=24, seconds=-5):
                continue
            known = r.state.known.get(j.id)
            assert known is not None, j
            if known.status != status:
                assert recheck is not None and known.status == "IN_PROGRESS", (j, known, status)
                assert t - known.last_seen_at < recheck
        for v in result.vanished:
            truth = r.api.jobs[v.job_id].status_at(t)
            if v.kind == "KILLED":
                assert truth == "KILLED"
            else:
                assert r.api.jobs[v.job_id].created <= t - timedelta(hours=24) + timedelta(seconds=5)
        # Every known job that was killed is inferred (running ones within the recheck delay).
        for job_id, k in r.state.known.items():
            if r.api.jobs[job_id].status_at(t) == "KILLED":
                assert recheck is not None and k.status == "IN_PROGRESS" and t - k.last_seen_at < recheck
        r.advance(minutes=minutes)


def _repeated(requests: list[tuple[str | None, str | None, int]]) -> list[tuple[str | None, str | None, int]]:
    seen: set[tuple[str | None, str | None, int]] = set()
    repeated = []
    for r in requests:
        if r in seen:
            repeated.append(r)
        seen.add(r)
    return repeated


def test_a_backlog_past_the_cap_spends_no_page_twice_and_probes_only_a_hedge():
    # A batch import queued 1,500 jobs 30 min ago; a FIFO pool takes one every 20 s from the
    # first sync on. The PENDING slice hides the queue's oldest ~400 jobs past its cap.
    history = [job(i, T0 - timedelta(hours=2, seconds=10 * i), run=5) for i in range(600)]
    burst_at = T0 - timedelta(minutes=30)
    backlog = [
        job(
            10_000 + k,
            burst_at + timedelta(milliseconds=40 * (1500 - k)),  # k = 0 is the newest
            run=10,
            queue=(T0 - burst_at).total_seconds() + 20 * (1500 - k) - 0.04 * (1500 - k),
        )
        for k in range(1500)
    ]
    r = Runner([*history, *backlog], T0)
    r.sync()
    # A second import queues 600 more behind it: queued jobs the first sync saw sink past the cap.
    first_backlog_done = T0 + timedelta(seconds=20 * 1500)
    for k in range(600):
        later = job(20_000 + k, T0 + timedelta(minutes=1, milliseconds=k), run=10)
        later.start = first_backlog_done + timedelta(seconds=20 * k)
        later.end = later.start + timedelta(seconds=10)
        r.api.jobs[later.id] = later
    for _ in range(3):
        r.api.requests.clear()
        r.advance(minutes=10)
        result = r.sync()
        assert not _repeated(r.api.requests), _repeated(r.api.requests)
        probes = [t for _, t, _ in r.api.requests if t is not None]
        # Queued jobs behind the queue's front are left (a recorded gap), but for the hedge: the
        # oldest few, probed by target rather than looked for among finished jobs.
        assert len(probes) <= PlannerSettings().behind_cap_probes
        assert any(g.reason == "behind-cap" for g in result.gaps)
        for j in backlog:
            status = j.status_at(r.api.now)
            known = r.state.known.get(j.id)
            if known is not None and status != "PENDING":
                assert known.status == status, (j.id, known.status, status)


def test_disjoint_hidden_ranges_are_revisited_apart():
    # Two short ranges an earlier sync could not see, 13 h apart, with 800 finished jobs between
    # them: walking the union would re-read all of those.
    jobs = [job(i, T0 - timedelta(minutes=i + 1), run=5) for i in range(900)]
    r = Runner(jobs, T0)
    r.sync()
    r.api.requests.clear()
    r.advance(minutes=10)
    r.gaps = [
        Gap("PENDING", "cap", T0 - timedelta(minutes=880), T0 - timedelta(minutes=870)),
        Gap("PENDING", "cap", T0 - timedelta(minutes=40), T0 - timedelta(minutes=30)),
    ]
    result = r.sync()
    done_pages = [o for s, _, o in r.api.requests if s == "DONE"]
    assert len(done_pages) <= 4, done_pages  # one or two pages per range, not the nine between
    assert result.coverage_complete


def test_an_unreadable_row_in_a_finished_slice_is_looked_at_again():
    jobs = [job(i, T0 - timedelta(minutes=i + 1), run=5) for i in range(300)]
    r = Runner(jobs, T0)
    r.sync()
    r.api.requests.clear()
    r.advance(minutes=10)
    # A DONE page had a row that could not be parsed: unlike a cap gap, nothing hides it for
    # good, so the next sync walks that range of the DONE slice again.
    hidden_from, hidden_to = T0 - timedelta(minutes=200), T0 - timedelta(minutes=150)
    r.gaps = [Gap("DONE", "rejected", hidden_from, hidden_to)]
    result = r.sync()
    seen = {o.job.id for o in result.observations}
    in_range = {j.id for j in jobs if hidden_from <= j.created <= hidden_to}
    assert in_range and in_range <= seen  # every row of the range shown again, not just some page


def test_a_queue_deeper_than_the_cap_under_newer_finished_jobs_stays_cheap():
    # 1,500 queued jobs that no worker takes during the test, 900 finished jobs created after
    # them, 300 older ones. A walk of a range of the PENDING slice once counted as a walk of the
    # whole slice: later syncs then skipped the slice and probed hundreds of targets instead,
    # spending the whole budget and leaving jobs unresolved.
    old = [job(i, T0 - timedelta(hours=10, minutes=i)) for i in range(300)]
    queued = [job(1000 + i, T0 - timedelta(hours=3, milliseconds=40 * i), run=None) for i in range(1500)]
    newer = [job(5000 + i, T0 - timedelta(seconds=7 * i + 1), run=2) for i in range(900)]
    r = Runner([*old, *queued, *newer], T0, budget=450)
    r.sync()
    for _ in range(4):
        r.advance(minutes=10)
        result = r.sync()
        assert result.requests < 60, (result.requests, result.plan_notes)
        assert not any(g.reason in ("budget", "unresolved") for g in result.gaps), result.gaps


def test_a_range_is_covered_only_by_one_proof_not_two_that_leave_a_hole():
    from jobs_pipeline.capture.coverage import Coverage, Span

    t = [T0 + timedelta(minutes=m) for m in range(6)]
    coverage = Coverage()
    coverage.add("DONE", Span(older=t[0], newer=t[2]))
    coverage.add("DONE", Span(older=t[3], newer=t[5]))
    assert coverage.covers("DONE", t[1]) and coverage.covers("DONE", t[4])
    assert not coverage.covers_range("DONE", t[1], t[4])  # (t2, t3] was never shown
    coverage.add("DONE", Span(older=t[0], newer=t[5]))
    assert coverage.covers_range("DONE", t[1], t[4])


def test_plan_notes_account_for_every_request_by_purpose():
    # sync_runs.plan_notes must explain a sync's cost: its requests by purpose add up to the
    # sync's requests, on the first sync (cap walks, discovery) and on later ones.
    old = [job(i, T0 - timedelta(hours=10, minutes=i)) for i in range(300)]
    queued = [job(1000 + i, T0 - timedelta(hours=3, milliseconds=40 * i), run=None) for i in range(1500)]
    newer = [job(5000 + i, T0 - timedelta(seconds=7 * i + 1), run=2) for i in range(900)]
    r = Runner([*old, *queued, *newer], T0, budget=450)
    for i in range(3):
        if i:
            r.advance(minutes=10)
        result = r.sync()
        by_purpose = {k: v for k, v in result.plan_notes.items() if k.startswith("requests.")}
        assert sum(by_purpose.values()) == result.requests, result.plan_notes
        assert result.plan_notes["budget"] == 450
        assert "requests.head" in by_purpose
