"""The capture benchmark's yardsticks: the issue's changed-jobs bound, the freshness lower bound and
the reachable sets. The benchmark is the proof the capture engine is judged by, so its scoring is
tested like the rest."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

import benchmarks.capture as capture_benchmark
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


def _random_truth(rng: random.Random) -> dict[str, TruthJob]:
    jobs = {}
    for i in range(rng.randint(1, 8)):
        created = T0 - timedelta(minutes=rng.uniform(0, 60)) + timedelta(minutes=rng.uniform(0, 10))
        history = [("PENDING", created)]
        started = completed = None
        at = created
        if rng.random() < 0.8:
            at = started = at + timedelta(minutes=rng.uniform(0, 15))
            history.append(("IN_PROGRESS", started))
            if rng.random() < 0.7:
                at = at + timedelta(minutes=rng.uniform(0, 15))
                outcome = rng.choice(["DONE", "ERROR", "KILLED"])
                completed = at if outcome != "KILLED" else None
                history.append((outcome, at))
        elif rng.random() < 0.3:
            history.append(("KILLED", at + timedelta(minutes=rng.uniform(0, 15))))
        jobs[f"j{i}"] = TruthJob(
            f"j{i}", rng.choice(["a", "b", "c", None]), created, started, completed, history
        )
    return jobs


def _fewest_windows(truth: dict[str, TruthJob], before: datetime, now: datetime, window: int) -> int:
    """Brute force: the fewest windows of `window` consecutive rows of any list (whole, status
    slice, target) that show every job whose status at `now` a fresh client must be shown."""
    visible = sorted(
        (j for j in truth.values() if j.visible_at(now)), key=lambda j: (j.created, j.id), reverse=True
    )
    must = [j.id for j in visible if j.created > before or j.status_at(before) in ("PENDING", "IN_PROGRESS")]
    if not must:
        return 1
    bit = {job_id: 1 << n for n, job_id in enumerate(must)}
    lists = [visible]
    lists += [
        [j for j in visible if j.status_at(now) == s] for s in ("PENDING", "IN_PROGRESS", "DONE", "ERROR")
    ]
    lists += [[j for j in visible if j.target == t] for t in {j.target for j in visible if j.target}]
    windows = {
        sum(bit.get(j.id, 0) for j in rows[offset : offset + window])
        for rows in lists
        for offset in range(len(rows))
    }
    full = (1 << len(must)) - 1
    best = {0: 0}
    frontier = [0]
    while full not in best:
        nxt = []
        for mask in frontier:
            for w in windows:
                if (mask | w) not in best:
                    best[mask | w] = best[mask] + 1
                    nxt.append(mask | w)
        frontier = nxt
    return best[full]


def test_the_freshness_bound_never_exceeds_the_fewest_windows_found_by_brute_force(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # With windows of 2 rows, tiny workloads have covers worth searching exhaustively.
    monkeypatch.setattr(capture_benchmark, "WINDOW", 2)
    rng = random.Random(7)
    tight = several = 0
    for _ in range(300):
        truth = _random_truth(rng)
        optimum = _fewest_windows(truth, POLLS[0], POLLS[1], window=2)
        bound = freshness_bound(truth, POLLS)
        assert bound <= optimum, (truth, bound, optimum)
        tight += bound == optimum
        several += optimum > 1
    # Not vacuous: many cases need several windows, and the bound mostly is the optimum itself.
    assert several > 100 and tight > 250
