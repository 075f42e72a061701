"""The client against the real twin over HTTP on 127.0.0.1: faults, limits, clocks, parsing.

Retry sleeps are recorded, not slept (scripted faults need no real waiting), except where the
twin's real-time rate limiter is the point of the test.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest

from jobs_pipeline.api.client import JobsClient
from jobs_pipeline.api.errors import AuthError, BadRequestError, MalformedResponseError
from jobs_pipeline.api.models import MAX_LIMIT, Job
from jobs_pipeline.api.monitor import JobFailedError, JobVanishedError, job_statistics, wait_for_job
from jobs_pipeline.api.parse import DUPLICATE_REASON
from jobs_pipeline.twin import FaultConfig, Quirks, SteppedClock, Twin, TwinConfig

KEY = "test-key"
# Far from the machine's clock on purpose: anything measured on the local clock would be wrong.
START = datetime(2024, 10, 28, 12, 0, 0, tzinfo=UTC)


@contextmanager
def served(**config: Any) -> Iterator[tuple[Twin, SteppedClock, str]]:
    settings: dict[str, Any] = {"jobs_per_day": 0, "api_keys": (KEY,), "rate_limit": None}
    settings.update(config)
    clock = SteppedClock(start=START)
    twin = Twin(TwinConfig(**settings), clock=clock)
    with twin.serve() as base_url:
        yield twin, clock, base_url


class RecordedSleep:
    """Records what the client asked to sleep; sleeps for real only when told to."""

    def __init__(self, real: bool = False) -> None:
        self.calls: list[float] = []
        self.real = real

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        if self.real:
            time.sleep(seconds)


def client_for(base_url: str, sleep: RecordedSleep | None = None, **kwargs: Any) -> JobsClient:
    options: dict[str, Any] = {"sleep": sleep or RecordedSleep(), "timeout": 2.0, "rate_limit": 10_000}
    options.update(kwargs)
    return JobsClient(base_url, KEY, **options)


def test_reads_every_visible_job_exactly_as_the_twin_serves_it() -> None:
    with served(jobs_per_day=500, quirks=Quirks(extra_fields=True)) as (twin, _, base_url):
        truth = twin.visible_jobs()
        with client_for(base_url) as client:
            walk = client.iter_slice()
            pages = list(walk)
    jobs = [job for page in pages for job in page.jobs]
    assert len(truth) > 300 and not walk.hit_cap
    assert [job.id for job in jobs] == [row["id"] for row in truth]
    assert all(not page.rejects for page in pages)
    for job, row in zip(jobs, truth, strict=True):
        assert job.raw == row
        assert job.created_at.isoformat(timespec="milliseconds").replace("+00:00", "Z") == row["createdAt"]
        # Unknown fields survive in the raw payload.
        assert {"priority", "queue"} <= set(job.raw)
    assert all(request.method == "GET" and request.path == "/v1/jobs" for request in twin.requests)


def test_a_deep_slice_stops_at_the_offset_cap() -> None:
    with served(jobs_per_day=2000) as (twin, _, base_url):
        visible = len(twin.visible_jobs())
        with client_for(base_url) as client:
            walk = client.iter_slice()
            list(walk)
        offsets = [int(request.query["offset"]) for request in twin.requests]
    assert visible > 1100
    assert walk.hit_cap and walk.rows == 1100 and max(offsets) == 1000


def test_date_header_is_the_observation_time() -> None:
    with served() as (_, clock, base_url), client_for(base_url) as client:
        first = client.list_jobs()
        clock.advance(timedelta(hours=3, milliseconds=750))
        second = client.list_jobs()
    assert (first.observed_at, first.clock_source) == (START, "server")
    # HTTP dates carry whole seconds.
    assert second.observed_at == START + timedelta(hours=3)


def test_without_a_date_header_the_local_clock_is_used() -> None:
    with served(quirks=Quirks(date_header=False)) as (_, _, base_url), client_for(base_url) as client:
        page = client.list_jobs()
    assert page.clock_source == "local"
    assert abs(page.observed_at - datetime.now(UTC)) < timedelta(seconds=30)


def test_every_transient_fault_is_retried_until_a_clean_page() -> None:
    faults = FaultConfig(timeout_seconds=3.0)
    with served(faults=faults) as (twin, _, base_url):
        twin.add_job("EXTRACTION", target_id="cm4doc1", created_at=START - timedelta(minutes=5))
        for kind in ("500", "502", "503", "429", "reset", "truncated", "invalid_json", "timeout"):
            twin.faults.fail_next(1, kind)
        sleep = RecordedSleep()
        with client_for(base_url, sleep, timeout=1.0, max_attempts=9) as client:
            page = client.list_jobs()
        served_faults = [request.fault for request in twin.requests]
    assert [job.target_id for job in page.jobs] == ["cm4doc1"]
    assert served_faults[:8] == ["500", "502", "503", "429", "reset", "truncated", "invalid_json", "timeout"]
    assert client.requests_sent == 9 and client.retries == 8 and client.responses_429 == 1
    # The 503 and the 429 carried Retry-After: 1 (the twin's default); never slept less.
    assert sleep.calls[2] >= 1.0 and sleep.calls[3] >= 1.0


@pytest.mark.parametrize("retry_after_format", ["seconds", "http-date"])
def test_retry_after_in_both_forms_is_honoured(retry_after_format: str) -> None:
    faults = FaultConfig(retry_after_seconds=7)
    with served(faults=faults, retry_after_format=retry_after_format) as (twin, _, base_url):
        twin.faults.fail_next(2, "429")
        sleep = RecordedSleep()
        with client_for(base_url, sleep) as client:
            client.list_jobs()
        headers_format = [request.status_code for request in twin.requests]
    assert headers_format == [429, 429, 200]
    # The http-date form is measured against the twin's Date (2024), not the local clock (later).
    assert sleep.calls == [7.0, 7.0]


def test_the_twins_real_rate_limit_is_survived_via_retry_after() -> None:
    sleep = RecordedSleep(real=True)
    with served(rate_limit=2, rate_window_seconds=1.0) as (twin, _, base_url):
        with client_for(base_url, sleep) as client:
            for _ in range(3):
                client.list_jobs()
        statuses = [request.status_code for request in twin.requests]
    assert statuses == [200, 200, 429, 200]
    assert client.responses_429 == 1 and sleep.calls[0] >= 1.0


def test_the_client_limiter_keeps_the_twin_from_ever_saying_429() -> None:
    # The client counts a request when it grants it, the server when it arrives; the client's
    # longer window absorbs up to 0.5 s of scheduling delay in between (the test machine is busy).
    with served(rate_limit=3, rate_window_seconds=0.3) as (twin, _, base_url):
        started = time.monotonic()
        with client_for(base_url, rate_limit=3, rate_window_seconds=0.8) as client:
            for _ in range(7):
                client.list_jobs()
        elapsed = time.monotonic() - started
        statuses = [request.status_code for request in twin.requests]
    assert statuses == [200] * 7 and client.responses_429 == 0
    # Two full client windows; how much of it was spent waiting depends on how slow requests are.
    assert elapsed >= 2 * 0.8 and client.rate_limit_wait_seconds > 0


def test_wrong_key_is_an_auth_error_after_one_request() -> None:
    wrong = "sk-wrong-key-0123456789"
    with served() as (twin, _, base_url):
        with JobsClient(base_url, wrong, sleep=RecordedSleep()) as client, pytest.raises(AuthError) as caught:
            client.list_jobs()
        assert len(twin.requests) == 1 and not twin.requests[0].key_ok
    assert "the API rejected the key (401): check DEVANA_API_KEY" in str(caught.value)
    assert "Invalid API key" in str(caught.value)
    assert wrong not in str(caught.value) and wrong not in repr(caught.value)


class OverCapTransport(httpx.BaseTransport):
    """Rewrites every request's limit to 500: a server stricter than we thought must answer 400."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_set_param("limit", "500")
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def test_a_400_fails_fast_with_the_servers_message() -> None:
    with served() as (twin, _, base_url):
        sleep = RecordedSleep()
        with (
            client_for(base_url, sleep, transport=OverCapTransport()) as client,
            pytest.raises(BadRequestError) as caught,
        ):
            client.list_jobs()
        assert len(twin.requests) == 1 and sleep.calls == []
    assert twin.requests[0].query["limit"] == "500"
    assert caught.value.server_message == "Invalid 'limit': must be <= 100"
    assert "server said: \"Invalid 'limit': must be <= 100\"" in str(caught.value)


def test_over_cap_values_are_never_sent_even_to_a_clamping_server() -> None:
    with served(quirks=Quirks(clamp_over_limit=True)) as (twin, _, base_url), client_for(base_url) as client:
        with pytest.raises(ValueError):
            client.list_jobs(limit=MAX_LIMIT + 1)
        with pytest.raises(ValueError):
            client.list_jobs(offset=1001)
        assert twin.requests == []


def test_damaged_rows_become_rejects_without_sinking_the_page() -> None:
    with served(jobs_per_day=500) as (twin, _, base_url), client_for(base_url) as client:
        clean = client.list_jobs(limit=50)
        twin.faults.fail_next(1, "bad_record")
        bad = client.list_jobs(limit=50)
        twin.faults.fail_next(1, "duplicate_ids")
        dup = client.list_jobs(limit=50)
        twin.faults.fail_next(1, "odd_unicode")
        odd = client.list_jobs(limit=50)
        twin.faults.fail_next(1, "huge_metadata")
        huge = client.list_jobs(limit=50)
    assert len(clean.jobs) == 50 and not clean.rejects
    assert bad.row_count == 50 and len(bad.jobs) == 49 and len(bad.rejects) == 1 and bad.rejects[0].reason
    assert len(dup.jobs) == 49 and [reject.reason for reject in dup.rejects] == [DUPLICATE_REASON]
    assert len(odd.jobs) == 50 and not odd.rejects
    assert len(huge.jobs) == 50 and any(len(str(job.metadata)) > 900_000 for job in huge.jobs)


def test_persistent_garbage_gives_up_after_a_few_attempts() -> None:
    with served() as (twin, _, base_url):
        twin.faults.fail_next(10, "invalid_json")
        with client_for(base_url) as client, pytest.raises(MalformedResponseError) as caught:
            client.list_jobs()
        assert len(twin.requests) == 3
    assert caught.value.attempts == 3


def twin_time(clock: SteppedClock) -> tuple[Callable[[float], None], Callable[[], float]]:
    """sleep/clock for the monitor that run on the twin's clock: a 5-minute wait takes no time."""

    def sleep(seconds: float) -> None:
        clock.advance(timedelta(seconds=seconds))

    def monotonic() -> float:
        return clock.now().timestamp()

    return sleep, monotonic


# outcome="KILLED" alone is not used: the twin (as of writing) lets the job finish DONE at the
# instant it should be killed; kill_after_seconds kills it mid-run as intended.
@pytest.mark.parametrize(
    "ending",
    [{"outcome": "DONE"}, {"outcome": "ERROR", "error": "PDF is encrypted"}, {"kill_after_seconds": 25.0}],
    ids=["done", "error", "killed"],
)
def test_monitor_follows_a_twin_job_to_its_end(ending: dict[str, Any]) -> None:
    with served() as (twin, clock, base_url):
        sleep, monotonic = twin_time(clock)
        # A newer job of another type on the same target must not distract the monitor.
        job_id = twin.add_job("EXTRACTION", target_id="cm4doc9", queue_seconds=5, run_seconds=40, **ending)
        twin.add_job("EMBEDDING", target_id="cm4doc9", created_at=START + timedelta(milliseconds=1))
        updates: list[str] = []
        with client_for(base_url) as client:

            def wait() -> Job:
                return wait_for_job(
                    client,
                    "cm4doc9",
                    "EXTRACTION",
                    300.0,
                    sleep=sleep,
                    clock=monotonic,
                    on_update=lambda job: updates.append(job.status),
                )

            if ending.get("outcome") == "DONE":
                job = wait()
                assert job.id == job_id and job.status == "DONE"
            elif ending.get("outcome") == "ERROR":
                with pytest.raises(JobFailedError, match="PDF is encrypted"):
                    wait()
            else:
                with pytest.raises(JobVanishedError, match="most likely KILLED"):
                    wait()
        queries = [request.query for request in twin.requests]
    assert updates[0] == "PENDING" and "IN_PROGRESS" in updates
    assert all(query.get("targetId") == "cm4doc9" and "type" not in query for query in queries)


def test_job_statistics_match_the_twins_view() -> None:
    with served(jobs_per_day=3000) as (twin, _, base_url):
        newest = twin.visible_jobs()[:MAX_LIMIT]
        with client_for(base_url) as client:
            stats = job_statistics(client)
    assert stats.total == MAX_LIMIT
    for status, count in stats.by_status.items():
        assert count == sum(1 for row in newest if row["status"] == status)
    assert sum(stats.by_type.values()) == MAX_LIMIT
    assert stats.observed_at == parsedate_to_datetime("Mon, 28 Oct 2024 12:00:00 GMT")
