"""errors.py through the client: the right class, an actionable message, never the key."""

from __future__ import annotations

import logging
import re
from typing import Any

import httpx
import pytest

from jobs_pipeline.api.client import JobsClient
from jobs_pipeline.api.errors import (
    ApiError,
    AuthError,
    BadRequestError,
    MalformedResponseError,
    NetworkError,
    NotFoundError,
    RateLimitedError,
    ServerError,
)
from jobs_pipeline_tests.test_api_fakes import BASE, KEY, Recorder, error_body, make_client, raw_body


def fail_with(*responses: httpx.Response | Exception, **kwargs: Any) -> ApiError:
    recorder = Recorder(*responses)
    client, _ = make_client(recorder, **kwargs)
    with client, pytest.raises(ApiError) as caught:
        client.list_jobs(status="DONE", limit=50, offset=100)
    return caught.value


def assert_no_key(exc: BaseException) -> None:
    assert KEY not in str(exc)
    assert KEY not in repr(exc)


def test_401_is_an_auth_error_that_names_the_env_var_and_fails_fast() -> None:
    recorder = Recorder(error_body(401, "Invalid API key"))
    client, clock = make_client(recorder)
    with client, pytest.raises(AuthError) as caught:
        client.list_jobs(status="DONE", limit=50, offset=100)
    message = str(caught.value)
    assert "the API rejected the key (401): check DEVANA_API_KEY" in message
    assert "GET /v1/jobs?type=DONE&limit=50&offset=100 -> 401" in message
    assert "Invalid API key" in message
    assert len(recorder.requests) == 1 and clock.sleeps == []
    assert_no_key(caught.value)


def test_403_is_an_auth_error_too() -> None:
    exc = fail_with(error_body(403, "forbidden"))
    assert isinstance(exc, AuthError) and exc.status == 403
    assert "rejected the key (403)" in str(exc)


def test_400_carries_the_servers_message() -> None:
    exc = fail_with(error_body(400, "offset must be <= 1000"))
    assert isinstance(exc, BadRequestError)
    assert exc.server_message == "offset must be <= 1000"
    assert "refused the query (400)" in str(exc) and "offset must be <= 1000" in str(exc)


def test_404_points_at_the_base_url() -> None:
    exc = fail_with(raw_body(404, b"<html>Not Found</html>"))
    assert isinstance(exc, NotFoundError)
    assert f"no /v1/jobs at {BASE} (404): check the base URL" in str(exc)


def test_429_exhausted_is_rate_limited_with_attempt_count() -> None:
    exc = fail_with(error_body(429, "slow down"), max_attempts=3)
    assert isinstance(exc, RateLimitedError) and exc.attempts == 3
    assert "rate limited by the API (no Retry-After)" in str(exc)
    assert "gave up after 3 attempts" in str(exc)


def test_503_exhausted_is_a_server_error() -> None:
    exc = fail_with(raw_body(503, b"upstream down"), max_attempts=2)
    assert isinstance(exc, ServerError) and exc.retryable and exc.status == 503
    assert "the API failed (503)" in str(exc) and "upstream down" in str(exc)


def test_501_is_a_server_error_that_is_not_retried() -> None:
    recorder = Recorder(raw_body(501, b"nope"))
    client, clock = make_client(recorder)
    with client, pytest.raises(ServerError) as caught:
        client.list_jobs()
    assert not caught.value.retryable and len(recorder.requests) == 1 and clock.sleeps == []


def test_connection_errors_become_network_errors() -> None:
    exc = fail_with(httpx.ConnectError("[Errno 111] Connection refused"), max_attempts=2)
    assert isinstance(exc, NetworkError)
    assert "could not talk to the API (ConnectError: [Errno 111] Connection refused)" in str(exc)
    assert "GET /v1/jobs?type=DONE&limit=50&offset=100" in str(exc)


def test_timeouts_become_network_errors_naming_the_timeout() -> None:
    exc = fail_with(httpx.ReadTimeout("timed out"), max_attempts=2, timeout=2.5)
    assert isinstance(exc, NetworkError)
    assert "no response from the API within 2.5 s (ReadTimeout)" in str(exc)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b'{"success": true, "data": [', "not valid JSON"),
        (b"<html>502 Bad Gateway</html>", "not valid JSON"),
        (b'{"success": true}', "lacks the expected envelope: body has no 'data' field"),
        (b'{"success": true, "data": 3}', "'data' is a JSON number"),
    ],
)
def test_malformed_bodies_are_malformed_response_errors(body: bytes, detail: str) -> None:
    exc = fail_with(raw_body(200, body))
    assert isinstance(exc, MalformedResponseError) and detail in str(exc)


def test_redirects_are_reported_not_followed() -> None:
    recorder = Recorder(httpx.Response(301, headers={"location": "https://elsewhere.test/v1/jobs"}))
    client, _ = make_client(recorder)
    with client, pytest.raises(ApiError, match=re.escape("redirected to 'https://elsewhere.test/v1/jobs'")):
        client.list_jobs()
    assert len(recorder.requests) == 1


def test_echoed_key_is_scrubbed_everywhere(caplog: pytest.LogCaptureFixture) -> None:
    echo = error_body(401, f"invalid key Bearer {KEY} for this tenant")
    caplog.set_level(logging.DEBUG, logger="jobs_pipeline.api")
    exc = fail_with(echo)
    assert isinstance(exc, AuthError)
    assert "invalid key Bearer *** for this tenant" in str(exc)
    assert_no_key(exc)
    assert exc.server_message is not None and KEY not in exc.server_message
    assert caplog.records, "expected a debug line per request"
    assert all(KEY not in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize(
    "response",
    [
        error_body(400, f"bad query, key={KEY}"),
        error_body(500, f"crash while handling {KEY}"),
        error_body(429, f"{KEY} is over quota"),
        raw_body(200, f"not json {KEY}".encode()),
        raw_body(200, f'{{"success": false, "error": "key {KEY} suspended"}}'.encode()),
    ],
)
def test_key_never_appears_in_any_error_or_log(
    response: httpx.Response, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="jobs_pipeline")
    exc = fail_with(response, max_attempts=2)
    assert_no_key(exc)
    assert all(KEY not in record.getMessage() for record in caplog.records)
    assert all(KEY not in str(record.args) for record in caplog.records)


def test_network_error_text_mentioning_the_key_is_scrubbed() -> None:
    exc = fail_with(httpx.ConnectError(f"proxy refused Authorization: Bearer {KEY}"), max_attempts=1)
    assert_no_key(exc)
    assert "Bearer ***" in str(exc)


def test_client_repr_never_shows_the_key() -> None:
    client, _ = make_client(Recorder(error_body(500, "x")))
    with client:
        assert KEY not in repr(client)
        assert client.key_fingerprint in repr(client)


@pytest.mark.parametrize(("key", "message"), [("", "empty"), (f" {KEY}\n", "whitespace or control")])
def test_invalid_keys_are_refused_without_echoing_them(key: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        JobsClient(BASE, key, transport=httpx.MockTransport(lambda request: error_body(500, "x")))
    assert KEY not in str(caught.value)
