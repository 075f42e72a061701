"""Unit tests of issue 13's small parts: safe display text, readable waits, loopback detection,
the client's body cap and clock check (through httpx.MockTransport)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobs_pipeline.api.client import JobsClient, is_loopback_host
from jobs_pipeline.api.errors import ClockSkewError, ResponseTooLargeError, describe_wait
from jobs_pipeline.safe_text import safe_text


@given(st.text())
def test_safe_text_never_lets_a_control_character_through(text: str) -> None:
    shown = safe_text(text)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in shown)
    assert "\u202e" not in shown


def test_safe_text_keeps_ordinary_text_and_shows_what_it_escaped() -> None:
    assert safe_text("Éric ✓ 100%") == "Éric ✓ 100%"
    assert safe_text("a\x1b[2Jb\u202ec") == "a\\x1b[2Jb\\u202ec"


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (45, "45 s"),
        (600, "600 s (10 min)"),
        (90_000, "90000 s (25.0 h)"),
        (2_306_056_647, "more than a year"),
    ],
)
def test_describe_wait(seconds: float, words: str) -> None:
    assert describe_wait(seconds) == words


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.1", True),
        ("::1", True),
        ("localhost", True),
        ("api.devana.ai", False),
        ("10.0.0.1", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_plain_http_off_loopback_needs_the_opt_in() -> None:
    with pytest.raises(ValueError, match="clear text"):
        JobsClient("http://api.devana.ai", "k")
    JobsClient("http://api.devana.ai", "k", allow_insecure_http=True).close()
    JobsClient("http://[::1]:8080", "k").close()


def _client(handler: httpx.MockTransport, **kw: object) -> JobsClient:
    return JobsClient(
        "https://api.test", "k", transport=handler, sleep=lambda _: None, rate_limit=10_000, **kw
    )  # type: ignore[arg-type]


def test_a_body_over_the_cap_is_refused_and_not_retried() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, content=b'{"success":true,"data":[' + b" " * 5000 + b"]}")

    with (
        _client(httpx.MockTransport(handler), max_body_bytes=4096) as client,
        pytest.raises(ResponseTooLargeError),
    ):
        client.list_jobs()
    assert len(calls) == 1


def test_a_date_far_from_the_local_clock_is_refused_only_when_asked() -> None:
    far = format_datetime(datetime.now(UTC) + timedelta(days=3), usegmt=True)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"success": True, "data": []}, headers={"Date": far})

    strict = _client(httpx.MockTransport(handler), max_clock_skew_seconds=300)
    with strict, pytest.raises(ClockSkewError, match="ahead of this machine's"):
        strict.list_jobs()
    with _client(httpx.MockTransport(handler)) as client:
        assert client.list_jobs().clock_source == "server"
