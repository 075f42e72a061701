"""The retry loop: which faults retry, how long it sleeps (fake sleep), when it stops."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from jobs_pipeline.api.client import MALFORMED_MAX_ATTEMPTS, RETRY_AFTER_CAP_SECONDS
from jobs_pipeline.api.errors import MalformedResponseError, RateLimitedError, ServerError
from jobs_pipeline.api.headers import parse_retry_after
from jobs_pipeline_tests.test_api_fakes import Recorder, error_body, job_record, make_client, ok, raw_body

SERVER_NOW = datetime(2024, 10, 29, 10, 0, 0, tzinfo=UTC)


def http_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


def test_retry_after_seconds_is_a_floor_on_the_wait() -> None:
    recorder = Recorder(error_body(429, "slow", headers={"Retry-After": "7"}), ok([job_record()]))
    client, clock = make_client(recorder)
    with client:
        page = client.list_jobs()
    assert len(page.jobs) == 1
    # The jittered backoff of a first retry is at most 0.5 s, so the server's 7 s wins.
    assert clock.sleeps == [7.0]
    assert (client.requests_sent, client.responses_429, client.retries, client.pages) == (2, 1, 1, 1)


def test_retry_after_http_date_is_measured_on_the_servers_clock() -> None:
    # Both headers are years in the past by the local clock: only Date makes the wait meaningful.
    headers = {"Date": http_date(SERVER_NOW), "Retry-After": http_date(SERVER_NOW + timedelta(seconds=12))}
    recorder = Recorder(error_body(429, "slow", headers=headers), ok([]))
    client, clock = make_client(recorder)
    with client:
        client.list_jobs()
    assert clock.sleeps == [12.0]


def test_retry_after_http_date_without_date_header_uses_the_local_clock() -> None:
    soon = datetime.now(UTC) + timedelta(seconds=30)
    recorder = Recorder(error_body(429, "slow", headers={"Retry-After": http_date(soon)}), ok([]))
    client, clock = make_client(recorder)
    with client:
        client.list_jobs()
    assert len(clock.sleeps) == 1 and 27.0 <= clock.sleeps[0] <= 30.0


def test_retry_after_on_503_is_honoured_too() -> None:
    busy = httpx.Response(503, content=b"busy", headers={"Retry-After": "4"})
    client, clock = make_client(Recorder(busy, ok([])))
    with client:
        client.list_jobs()
    assert clock.sleeps == [4.0]


def test_without_retry_after_the_waits_are_full_jitter_over_a_capped_exponential() -> None:
    recorder = Recorder(*[raw_body(500, b"boom")] * 5, ok([]))
    client, clock = make_client(recorder, seed=11, backoff_base=2.0, backoff_max=10.0)
    with client:
        client.list_jobs()
    ceilings = [2.0, 4.0, 8.0, 10.0, 10.0]  # base * 2**n, capped at backoff_max
    expected_rng = random.Random(11)
    assert clock.sleeps == [expected_rng.uniform(0.0, ceiling) for ceiling in ceilings]
    assert all(0.0 <= wait <= ceiling for wait, ceiling in zip(clock.sleeps, ceilings, strict=True))
    assert client.retries == 5 and client.requests_sent == 6


def test_jitter_spreads_waits_instead_of_repeating_them() -> None:
    waits = []
    for seed in range(20):
        client, clock = make_client(Recorder(raw_body(502, b"x"), ok([])), seed=seed, backoff_base=4.0)
        with client:
            client.list_jobs()
        waits.append(clock.sleeps[0])
    assert all(0.0 <= wait <= 4.0 for wait in waits)
    assert len(set(waits)) == len(waits)
    assert min(waits) < 1.5 and max(waits) > 2.5


def test_unusable_retry_after_falls_back_to_backoff() -> None:
    recorder = Recorder(error_body(429, "slow", headers={"Retry-After": "soon-ish"}), ok([]))
    client, clock = make_client(recorder, backoff_base=0.5)
    with client:
        client.list_jobs()
    assert len(clock.sleeps) == 1 and 0.0 <= clock.sleeps[0] <= 0.5


def test_retry_after_beyond_the_cap_gives_up_instead_of_sleeping_less() -> None:
    recorder = Recorder(error_body(429, "slow", headers={"Retry-After": "600"}), ok([]))
    client, clock = make_client(recorder)
    with client, pytest.raises(RateLimitedError) as caught:
        client.list_jobs()
    assert clock.sleeps == [] and len(recorder.requests) == 1
    assert caught.value.retry_after == 600.0 and not caught.value.retryable
    assert f"asks to wait 600 s (10 min), more than the {RETRY_AFTER_CAP_SECONDS:.0f} s" in str(caught.value)


def test_a_503_asking_for_too_long_a_wait_gives_up() -> None:
    busy = httpx.Response(503, content=b"maintenance", headers={"Retry-After": "3600"})
    client, clock = make_client(Recorder(busy, ok([])))
    with client, pytest.raises(ServerError, match="asks to wait 3600 s") as caught:
        client.list_jobs()
    assert clock.sleeps == [] and not caught.value.retryable


def test_transient_faults_of_every_kind_are_retried_until_success() -> None:
    recorder = Recorder(
        httpx.ReadTimeout("slow"),
        httpx.ConnectError("refused"),
        httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
        raw_body(200, b'{"success": true, "data": [{"id": "x"'),
        raw_body(502, b"bad gateway"),
        ok([job_record()]),
    )
    client, clock = make_client(recorder)
    with client:
        page = client.list_jobs()
    assert len(page.jobs) == 1
    assert len(clock.sleeps) == 5 and client.retries == 5 and client.requests_sent == 6
    assert client.limiter.in_window() == 6, "every attempt takes a limiter slot"


def test_max_attempts_bounds_the_tries() -> None:
    recorder = Recorder(raw_body(504, b"gateway timeout"))
    client, clock = make_client(recorder, max_attempts=4)
    with client, pytest.raises(ServerError) as caught:
        client.list_jobs()
    assert len(recorder.requests) == 4 and len(clock.sleeps) == 3 and caught.value.attempts == 4


def test_malformed_bodies_get_only_a_few_attempts() -> None:
    recorder = Recorder(raw_body(200, b"<html>captive portal</html>"))
    client, _ = make_client(recorder, max_attempts=6)
    with client, pytest.raises(MalformedResponseError) as caught:
        client.list_jobs()
    assert len(recorder.requests) == MALFORMED_MAX_ATTEMPTS
    assert caught.value.attempts == MALFORMED_MAX_ATTEMPTS


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", 0.0),
        ("  17 ", 17.0),
        ("2.5", 2.5),
        ("-3", None),
        ("nan", None),
        ("", None),
        (None, None),
        (http_date(SERVER_NOW + timedelta(seconds=90)), 90.0),
        (http_date(SERVER_NOW - timedelta(seconds=90)), 0.0),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, SERVER_NOW) == expected
