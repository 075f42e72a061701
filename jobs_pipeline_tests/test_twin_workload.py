"""Properties of the simulated workload, read from ground truth and the API view."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from jobs_pipeline.twin import AcceleratedClock, Burst, SteppedClock, Twin, TwinConfig
from jobs_pipeline.twin.catalog import KINDS
from jobs_pipeline_tests.conftest import TWIN_KEY, TWIN_START, MakeTwin, ServedTwin

AUTH = {"Authorization": f"Bearer {TWIN_KEY}"}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def simulate(hours: float, start: datetime = TWIN_START, **config: Any) -> tuple[Twin, SteppedClock]:
    config.setdefault("seed", 7)
    clock = SteppedClock(start)
    twin = Twin(TwinConfig(**config), clock=clock)
    clock.advance(timedelta(hours=hours))
    return twin, clock


def seconds(job: dict[str, Any], start: str, end: str) -> float:
    return (at(job[end]) - at(job[start])).total_seconds()


def test_daily_cycle_peaks_mid_afternoon_and_averages_jobs_per_day() -> None:
    twin, _ = simulate(48, start=datetime(2026, 11, 1, tzinfo=UTC), jobs_per_day=3000, history_hours=0)
    truth = twin.ground_truth()
    per_hour = Counter(at(job["createdAt"]).hour for job in truth)
    afternoon = sum(per_hour[hour] for hour in range(13, 18))
    night = sum(per_hour[hour] for hour in range(1, 6))
    assert afternoon > 2 * night, per_hour
    assert max(per_hour, key=lambda hour: per_hour[hour]) in range(12, 19)
    assert 0.93 * 2 * 3000 < len(truth) < 1.07 * 2 * 3000


def test_worker_pool_is_fifo_and_bounded_and_a_burst_saturates_it() -> None:
    burst = Burst(at=TWIN_START + timedelta(hours=1), count=1500)
    twin, _ = simulate(4, jobs_per_day=6000, bursts=(burst,))
    started = [job for job in twin.ground_truth() if job["startedAt"] is not None]
    # FIFO: ordered by creation, start times never go backwards.
    starts = [job["startedAt"] for job in started]
    assert starts == sorted(starts)
    # Never more jobs running than workers, and all of them busy while the backlog lasts.
    changes: list[tuple[str, int]] = []
    for job in started:
        changes.append((job["startedAt"], 1))
        changes.append((job["history"][2]["at"] if len(job["history"]) > 2 else "9999", -1))
    running, peak = 0, 0
    for _, delta in sorted(changes, key=lambda change: (change[0], change[1])):
        running += delta
        peak = max(peak, running)
    assert peak == twin.workers
    # Queue waits are real: the burst's last jobs waited much longer than its first ones.
    burst_jobs = [
        job for job in started if burst.at <= at(job["createdAt"]) <= burst.at + timedelta(minutes=1)
    ]
    waits = [seconds(job, "createdAt", "startedAt") for job in burst_jobs]
    assert max(waits) > 1800 and min(waits) < 60


def test_burst_builds_a_pending_backlog_that_drains(make_twin: MakeTwin, http: httpx.Client) -> None:
    burst = Burst(at=TWIN_START + timedelta(minutes=10), count=1500)
    served = make_twin(jobs_per_day=6000, bursts=(burst,))
    served.clock.advance(timedelta(minutes=12))
    pending = served.twin.visible_jobs(status="PENDING")
    assert len(pending) > 1200
    deep = http.get(served.base_url + "/v1/jobs", params={"type": "PENDING", "offset": 1000}, headers=AUTH)
    assert all(row["status"] == "PENDING" for row in deep.json()["data"]) and deep.json()["data"]
    created = [job for job in served.twin.ground_truth() if burst.at <= at(job["createdAt"])]
    in_window = [job for job in created if at(job["createdAt"]) < burst.at + timedelta(seconds=60)]
    types = Counter(job["type"] for job in in_window)
    assert types["EXTRACTION"] >= 1500 and types["IMPORT"] >= 1
    burst_targets = [job["targetId"] for job in in_window if job["type"] == "EXTRACTION"]
    assert len(set(burst_targets)) == len(burst_targets), "each imported document is a new target"
    # Only the pool's spare capacity works the backlog off: slowly at the afternoon peak,
    # faster at night, gone within the day.
    served.clock.advance(timedelta(hours=8))
    assert len(served.twin.visible_jobs(status="PENDING")) < len(pending) - 100
    served.clock.advance(timedelta(hours=12))
    assert len(served.twin.visible_jobs(status="PENDING")) < 50


def test_killed_jobs_vanish_from_the_api_but_stay_in_truth() -> None:
    burst = Burst(at=TWIN_START + timedelta(minutes=30), count=2000)
    twin, clock = simulate(3, jobs_per_day=6000, bursts=(burst,))
    truth = twin.ground_truth()
    killed = [job for job in truth if job["finalStatus"] == "KILLED"]
    assert 0.004 < len(killed) / len(truth) < 0.016
    while_pending = [job for job in killed if [h["status"] for h in job["history"]] == ["PENDING", "KILLED"]]
    while_running = [job for job in killed if len(job["history"]) == 3]
    assert while_pending and while_running
    visible = {row["id"] for row in twin.visible_jobs()}
    recent = [job for job in killed if at(job["createdAt"]) > clock.now() - timedelta(hours=24)]
    assert recent and not visible & {job["id"] for job in recent}
    for job in killed:
        assert job["completedAt"] is None
        assert twin.status_at(job["id"], at(job["history"][-1]["at"])) == "KILLED"


@pytest.mark.parametrize("twin", [0], indirect=True)
def test_progress_moves_in_steps_that_bump_updated_at(twin: ServedTwin, http: httpx.Client) -> None:
    job_id = twin.twin.add_job(run_seconds=300, queue_seconds=20)
    seen: list[tuple[str, int, str]] = []
    for _ in range(34):
        row = http.get(twin.base_url + "/v1/jobs", headers=AUTH).json()["data"][0]
        assert row["id"] == job_id
        seen.append((row["status"], row["progress"], row["updatedAt"]))
        twin.clock.advance(timedelta(seconds=10))
    progress = [value for _, value, _ in seen]
    assert progress == sorted(progress)
    running = {value for status, value, _ in seen if status == "IN_PROGRESS"}
    assert len(running - {0}) >= 3 and max(running) < 100
    for before, after in itertools.pairwise(seen):
        if after[1] != before[1]:
            assert after[2] > before[2], "a progress step bumps updatedAt"
        elif after[0] == before[0]:
            assert after[2] == before[2], "nothing else moves updatedAt"
    assert seen[0][:2] == ("PENDING", 0)
    assert seen[-1][:2] == ("DONE", 100)


def test_about_one_job_in_ten_has_no_progress(busy_truth: Twin) -> None:
    rows = busy_truth.visible_jobs()
    share = sum("progress" not in row for row in rows) / len(rows)
    assert 0.06 < share < 0.14


@pytest.fixture(scope="module")
def busy_truth() -> Twin:
    twin, _ = simulate(24, jobs_per_day=6000)
    return twin


def test_durations_follow_the_doc_with_a_slow_tail(busy_truth: Twin) -> None:
    truth = [job for job in busy_truth.ground_truth() if job["finalStatus"] == "DONE"]
    inside = tail = 0
    for job in truth:
        kind = KINDS[job["type"]]
        run = seconds(job, "startedAt", "completedAt")
        assert kind.min_seconds - 0.001 <= run <= kind.max_seconds * 10 + 0.001, (job["type"], run)
        if run <= kind.max_seconds + 0.001:
            inside += 1
        else:
            tail += 1
    assert 0.003 < tail / len(truth) < 0.025
    assert inside / len(truth) > 0.97


def test_type_mix_and_failure_rates(busy_truth: Twin) -> None:
    truth = busy_truth.ground_truth()
    types = Counter(job["type"] for job in truth)
    assert set(types) == set(KINDS)
    assert types.most_common(1)[0][0] == "EXTRACTION"
    errors = sum(job["finalStatus"] == "ERROR" for job in truth) / len(truth)
    assert 0.015 < errors < 0.06
    for row in busy_truth.visible_jobs(status="ERROR")[:50]:
        assert row["error"] in KINDS[row["type"]].errors


def test_targets_repeat_like_a_real_tenant(busy_truth: Twin) -> None:
    truth = busy_truth.ground_truth()
    extraction_done = {
        job["targetId"]: at(job["completedAt"])
        for job in truth
        if job["type"] == "EXTRACTION" and job["finalStatus"] == "DONE"
    }
    follow_ups = [
        job
        for job in truth
        if job["type"] == "EMBEDDING"
        and job["targetId"] in extraction_done
        and timedelta(0) <= at(job["createdAt"]) - extraction_done[job["targetId"]] <= timedelta(seconds=10)
    ]
    assert len(follow_ups) > 0.3 * len(extraction_done)
    folder_jobs = [job["targetId"] for job in truth if job["type"] in ("SYNC", "IMPORT")]
    assert len(set(folder_jobs)) <= 24 < len(folder_jobs)


def test_history_hours_fill_the_window_at_start() -> None:
    twin, _ = simulate(0, jobs_per_day=2000, history_hours=26)
    created = [at(job["createdAt"]) for job in twin.ground_truth()]
    assert TWIN_START - timedelta(hours=26) <= min(created) < TWIN_START - timedelta(hours=25, minutes=30)
    oldest_visible = at(twin.visible_jobs()[-1]["createdAt"])
    assert oldest_visible < TWIN_START - timedelta(hours=23, minutes=30)


def test_the_window_slides_with_the_clock() -> None:
    twin, clock = simulate(0, jobs_per_day=2000)
    before = {row["id"]: row for row in twin.visible_jobs()}
    clock.advance(timedelta(minutes=45))
    after = {row["id"] for row in twin.visible_jobs()}
    cutoff = clock.now() - timedelta(hours=24)
    expired = {job_id for job_id, row in before.items() if at(row["createdAt"]) <= cutoff}
    assert expired and not expired & after
    kept = set(before) - expired
    killed = {job["id"] for job in twin.ground_truth() if job["finalStatus"] == "KILLED"}
    assert kept - killed <= after


def test_same_seed_same_world_whatever_the_stepping(make_twin: MakeTwin, http: httpx.Client) -> None:
    burst = (Burst(at=TWIN_START + timedelta(minutes=20), count=200),)
    one = make_twin(jobs_per_day=2000, seed=11, bursts=burst)
    other = make_twin(jobs_per_day=2000, seed=11, bursts=burst)
    one.clock.advance(timedelta(hours=2))
    for _ in range(24):
        other.clock.advance(timedelta(minutes=5))
        other.twin.visible_jobs(status="PENDING")  # interleave reads: they must not matter
    assert one.twin.ground_truth() == other.twin.ground_truth()
    pages = [
        http.get(served.base_url + "/v1/jobs", params={"limit": 100, "offset": 500}, headers=AUTH).content
        for served in (one, other)
    ]
    assert pages[0] == pages[1]
    different = make_twin(jobs_per_day=2000, seed=12, bursts=burst)
    different.clock.advance(timedelta(hours=2))
    assert {j["id"] for j in different.twin.ground_truth()}.isdisjoint(
        {j["id"] for j in one.twin.ground_truth()}
    )


def test_scripted_jobs_do_not_perturb_the_background() -> None:
    plain, plain_clock = simulate(0, jobs_per_day=2000)
    scripted, scripted_clock = simulate(0, jobs_per_day=2000)
    extra = scripted.add_job(job_type="SYNC", run_seconds=60)
    plain_clock.advance(timedelta(hours=1))
    scripted_clock.advance(timedelta(hours=1))
    background = [job for job in scripted.ground_truth() if job["id"] != extra]
    assert background == plain.ground_truth()


@pytest.mark.parametrize("twin", [0], indirect=True)
def test_scripted_timeline_and_status_at(twin: ServedTwin, http: httpx.Client) -> None:
    start = twin.clock.now()
    job_id = twin.twin.add_job(
        job_type="TRANSCRIPTION",
        target_id="cmdoc",
        queue_seconds=60,
        run_seconds=120,
        outcome="ERROR",
        error="boom",
    )
    twin.clock.advance(timedelta(minutes=5))
    row = http.get(twin.base_url + "/v1/jobs", params={"targetId": "cmdoc"}, headers=AUTH).json()["data"][0]
    assert (row["id"], row["type"], row["status"], row["error"]) == (job_id, "TRANSCRIPTION", "ERROR", "boom")
    assert at(row["startedAt"]) == start + timedelta(seconds=60)
    assert at(row["completedAt"]) == start + timedelta(seconds=180)
    expected = {-1: None, 30: "PENDING", 60: "IN_PROGRESS", 179: "IN_PROGRESS", 180: "ERROR", 299: "ERROR"}
    for offset, status in expected.items():
        assert twin.twin.status_at(job_id, start + timedelta(seconds=offset)) == status
    with pytest.raises(ValueError):
        twin.twin.status_at(job_id, twin.clock.now() + timedelta(seconds=1))
    with pytest.raises(KeyError):
        twin.twin.status_at("cm-unknown", start)


@pytest.mark.parametrize("twin", [0], indirect=True)
def test_add_job_in_the_past_lives_its_past_at_once(twin: ServedTwin) -> None:
    start = twin.clock.now()
    job_id = twin.twin.add_job(created_at=start - timedelta(hours=2), run_seconds=30)
    (job,) = twin.twin.ground_truth()
    assert job["id"] == job_id and job["finalStatus"] == "DONE"
    assert at(job["completedAt"]) == start - timedelta(hours=2) + timedelta(seconds=30)


def test_memory_is_bounded_and_truth_retention_is_honoured() -> None:
    twin, _ = simulate(96, jobs_per_day=1500, history_hours=0, truth_retention=timedelta(hours=72))
    stats = twin.stats()
    # The live store keeps ~48 h (plus up to an hour between prunes), truth 72 h.
    assert stats["live_jobs"] < 1500 * 49 / 24 * 1.15
    assert 1500 * 70 / 24 * 0.85 < stats["truth_jobs"] < 1500 * 73 / 24 * 1.15
    kept = TwinConfig(jobs_per_day=1500, history_hours=0)
    assert kept.truth_retention is None  # default: keep every job in ground truth


def test_pool_size_follows_the_load() -> None:
    small = Twin(TwinConfig(jobs_per_day=6000, history_hours=0), clock=SteppedClock(TWIN_START))
    large = Twin(TwinConfig(jobs_per_day=40000, history_hours=0), clock=SteppedClock(TWIN_START))
    fixed = Twin(TwinConfig(jobs_per_day=6000, history_hours=0, workers=3), clock=SteppedClock(TWIN_START))
    assert 8 <= small.workers <= 25
    assert 6 <= large.workers / small.workers <= 7
    assert fixed.workers == 3


def test_accelerated_clock_runs_the_world_fast(http: httpx.Client) -> None:
    clock = AcceleratedClock(speed=3600, start=TWIN_START)
    twin = Twin(TwinConfig(jobs_per_day=3000, history_hours=1), clock=clock)
    with twin.serve() as base_url:
        first = http.get(base_url + "/v1/jobs", headers=AUTH)
        import time

        time.sleep(0.3)
        second = http.get(base_url + "/v1/jobs", headers=AUTH)
    gap = at(second.json()["data"][0]["createdAt"]) - at(first.json()["data"][0]["createdAt"])
    assert gap > timedelta(minutes=5)


def test_clocks_refuse_naive_or_backward_time() -> None:
    with pytest.raises(ValueError):
        SteppedClock(datetime(2026, 1, 1))
    clock = SteppedClock(TWIN_START)
    with pytest.raises(ValueError):
        clock.advance(timedelta(seconds=-1))
    with pytest.raises(ValueError):
        clock.set(TWIN_START - timedelta(seconds=1))
    assert clock.set(TWIN_START + timedelta(days=1)) == TWIN_START + timedelta(days=1)
