"""limiter.py: sliding-window semantics on a fake clock, real threads on a tiny window, sharing."""

from __future__ import annotations

import gc
import threading
import time

import httpx
import pytest

from jobs_pipeline.api.client import JobsClient
from jobs_pipeline.api.limiter import SlidingWindowLimiter, key_fingerprint, registry_keys, shared_limiter
from jobs_pipeline_tests.test_api_fakes import KEY, FakeClock, make_client, ok


def offline_client(base: str, key: str, *, rate_limit: int, rate_window_seconds: float) -> JobsClient:
    # A MockTransport avoids building an SSL context per client (slow) and any network use.
    return JobsClient(
        base,
        key,
        rate_limit=rate_limit,
        rate_window_seconds=rate_window_seconds,
        transport=httpx.MockTransport(lambda request: ok([])),
        rate_state_dir=None,  # this process's own registry (sharing across processes off)
    )


def fake_limiter(limit: int, window: float) -> tuple[SlidingWindowLimiter, FakeClock]:
    clock = FakeClock(start=0.0)
    return SlidingWindowLimiter(limit, window, clock=clock, sleep=clock.sleep), clock


def test_grants_up_to_the_limit_without_waiting() -> None:
    limiter, clock = fake_limiter(3, 10.0)
    grants = [limiter.acquire() for _ in range(3)]
    assert [grant.waited for grant in grants] == [0.0, 0.0, 0.0]
    assert clock.sleeps == [] and limiter.in_window() == 3


def test_blocks_until_the_oldest_grant_leaves_the_window() -> None:
    limiter, clock = fake_limiter(2, 10.0)
    limiter.acquire()  # t=0
    clock.now = 4.0
    limiter.acquire()  # t=4
    clock.now = 5.0
    third = limiter.acquire()  # must wait for t=0 to leave: t=10
    assert third.at == 10.0 and third.waited == 5.0
    fourth = limiter.acquire()  # next to leave is t=4: t=14
    assert fourth.at == 14.0 and fourth.waited == 4.0
    assert clock.sleeps == [5.0, 4.0]


def test_window_slides_rather_than_resetting_in_buckets() -> None:
    # A fixed 10 s bucket would allow 2 at t=9.9 and 2 more at t=10.0; a sliding window does not.
    limiter, clock = fake_limiter(2, 10.0)
    clock.now = 9.9
    limiter.acquire()
    limiter.acquire()
    clock.now = 10.0
    assert limiter.acquire().at == pytest.approx(19.9)


def test_at_most_limit_grants_in_any_window_on_a_fake_clock() -> None:
    limiter, clock = fake_limiter(5, 1.0)
    stamps = []
    for step in range(60):
        clock.now += (step % 7) * 0.05  # irregular arrivals
        stamps.append(limiter.acquire().at)
    for first, later in zip(stamps, stamps[5:], strict=False):
        assert later - first >= 1.0 - 1e-6  # float slack, see limiter._FLOAT_SLACK_SECONDS


@pytest.mark.parametrize(("limit", "window"), [(0, 1.0), (1, 0.0), (1, -1.0)])
def test_refuses_nonsense_budgets(limit: int, window: float) -> None:
    with pytest.raises(ValueError):
        SlidingWindowLimiter(limit, window)


def test_real_threads_share_a_tiny_window() -> None:
    limit, window = 5, 0.2
    limiter = SlidingWindowLimiter(limit, window)
    stamps: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(5):
            grant = limiter.acquire()
            with lock:
                stamps.append(grant.at)

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    elapsed = time.monotonic() - started
    stamps.sort()
    assert len(stamps) == 20
    # 20 grants at 5 per 0.2 s need at least 3 full windows after the first burst.
    assert elapsed >= 3 * window
    assert elapsed < 3 * window + 2.0
    for first, later in zip(stamps, stamps[limit:], strict=False):
        assert later - first >= window - 1e-6


def test_clients_with_the_same_base_and_key_share_one_limiter() -> None:
    base = "https://shared.example.test"
    first = offline_client(base, KEY, rate_limit=7, rate_window_seconds=1.0)
    second = offline_client(base + "/", KEY, rate_limit=7, rate_window_seconds=1.0)
    other_key = offline_client(base, KEY + "-other", rate_limit=7, rate_window_seconds=1.0)
    other_base = offline_client("https://elsewhere.example.test", KEY, rate_limit=7, rate_window_seconds=1.0)
    try:
        assert first.limiter is second.limiter
        assert other_key.limiter is not first.limiter
        assert other_base.limiter is not first.limiter
        assert first.limiter is shared_limiter(base, KEY, 7, 1.0)
    finally:
        for client in (first, second, other_key, other_base):
            client.close()


def test_registry_is_keyed_by_fingerprint_never_by_the_key() -> None:
    client = offline_client("https://registry.example.test", KEY, rate_limit=3, rate_window_seconds=1.0)
    try:
        keys = registry_keys()
        assert ("https://registry.example.test", key_fingerprint(KEY), 3, 1.0) in keys
        assert all(KEY not in str(entry) for entry in keys)
        assert len(key_fingerprint(KEY)) == 16 and key_fingerprint(KEY) != key_fingerprint(KEY + "x")
    finally:
        client.close()


def test_a_limiter_is_forgotten_when_no_client_uses_it() -> None:
    base = "https://forgotten.example.test"
    client = offline_client(base, KEY, rate_limit=2, rate_window_seconds=60.0)
    client.limiter.acquire()
    client.limiter.acquire()
    client.close()
    del client
    gc.collect()
    assert not [entry for entry in registry_keys() if entry[0] == base]
    fresh = offline_client(base, KEY, rate_limit=2, rate_window_seconds=60.0)
    try:
        assert fresh.limiter.in_window() == 0
    finally:
        fresh.close()


def test_client_waits_for_the_limiter_before_each_request() -> None:
    clock = FakeClock(start=0.0)
    sent_at: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent_at.append(clock.now)
        return ok([])

    client, _ = make_client(handler, clock=clock, limit=2, window=30.0)
    with client:
        for _ in range(5):
            client.list_jobs()
    assert sent_at == [0.0, 0.0, 30.0, 30.0, 60.0]
    assert client.rate_limit_wait_seconds == 60.0
