"""The capture benchmark's yardsticks: the issue's changed-jobs bound, the freshness lower bound and
the reachable sets. The benchmark is the proof the capture engine is judged by, so its scoring is
tested like the rest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from benchmarks.capture import TruthJob, freshness_bound, oracle_bound, reachable_sets

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
POLL = timedelta(minutes=10)
POLLS = [T0, T0 + POLL]


def done(i: int, created: datetime, target: str | None = None) -> TruthJob:
    return TruthJob(
        id=f"d{i:04d}",
        target=target or f"t{i}",
        created=created,
        started=created,
        completed=created + timedelta(seconds=1),
        history=[("PENDING", created), ("IN_PROGRESS", created), ("DONE", created + timedelta(seconds=1))],
    )


def running(i: int, created: datetime, ends: datetime | None = None, target: str | None = None) -> TruthJob:
    history = [("PENDING", created), ("IN_PROGRESS", created)]
    if ends is not None:
        history.append(("DONE", ends))
    return TruthJob(f"r{i:04d}", target or f"rt{i}", created, created, ends, history)


def filler(n: int) -> dict[str, TruthJob]:
    """n finished jobs, one a minute, ending an hour before the first poll."""
    jobs = [done(i, T0 - timedelta(hours=1, minutes=i)) for i in range(n)]
    return {j.id: j for j in jobs}


def test_nothing_changing_costs_one_request_a_poll_in_both_bounds() -> None:
    truth = filler(50)
    assert oracle_bound(truth, POLLS) == 1
    assert freshness_bound(truth, POLLS) == 1


def test_new_jobs_need_a_window_per_hundred() -> None:
    truth = filler(50)
    for i in range(250):
        j = done(1000 + i, T0 + timedelta(seconds=2 * i + 1))
        truth[j.id] = j
    assert oracle_bound(truth, POLLS) == 3
    assert freshness_bound(truth, POLLS) == 3


def test_running_jobs_far_apart_share_their_status_slice() -> None:
    # Two jobs running through both polls, 150 rows apart in the whole list: one page of the
    # IN_PROGRESS slice shows both. Nothing changed, and one request is enough to know it.
    truth = filler(300)
    for job in (running(1, T0 - timedelta(minutes=30)), running(2, T0 - timedelta(hours=3, minutes=30))):
        truth[job.id] = job
    assert oracle_bound(truth, POLLS) == 1
    assert freshness_bound(truth, POLLS) == 1


def test_a_deep_job_that_finished_costs_a_page_of_its_own() -> None:
    # Same two jobs, but the deep one finished between the polls: it now sits 150 rows down the
    # DONE slice, away from the other one and from the head. Only one job changed (issue's bound
    # 1), yet no single request shows both: the freshness bound is 2.
    truth = filler(300)
    for job in (
        running(1, T0 - timedelta(minutes=30)),
        running(2, T0 - timedelta(hours=3, minutes=30), ends=T0 + timedelta(minutes=5)),
    ):
        truth[job.id] = job
    assert oracle_bound(truth, POLLS) == 1
    assert freshness_bound(truth, POLLS) == 2


def test_a_shared_target_puts_jobs_in_one_window() -> None:
    truth = filler(300)
    for job in (
        running(1, T0 - timedelta(minutes=30), target="folder"),
        running(2, T0 - timedelta(hours=3, minutes=30), ends=T0 + timedelta(minutes=5), target="folder"),
    ):
        truth[job.id] = job
    assert freshness_bound(truth, POLLS) == 1


def test_reachable_sets_stop_at_the_cap_of_every_list() -> None:
    # 1,300 finished jobs: the whole list and the DONE slice both reach the newest 1,100 only.
    truth = {j.id: j for j in (done(i, T0 - timedelta(minutes=i + 1)) for i in range(1300))}
    reach = reachable_sets(truth, [T0])[T0]
    newest_first = sorted(truth.values(), key=lambda j: j.created, reverse=True)
    assert reach == {j.id for j in newest_first[:1100]}
