"""Property-based fuzzing of what comes from outside: API responses and command-line arguments.

- The parser: any JSON in `data`, any envelope. One outcome per record, never an exception.
- The client over httpx.MockTransport: any status, headers and body. A Page or an ApiError with a
  one-line message, nothing else, and never a sleep longer than the client's cap.
- `jobs-pipeline sync` with random option values: never a traceback; exit 0, or 1-3 with one
  `error:` line on stderr, or typer's usage error (2).
"""

from __future__ import annotations

import json
import socket
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from benchmarks.soak import KEY, soak_twin
from jobs_pipeline.api.client import RETRY_AFTER_CAP_SECONDS, JobsClient
from jobs_pipeline.api.errors import ApiError
from jobs_pipeline.api.models import Job, Page, RejectedRecord
from jobs_pipeline.api.parse import EnvelopeError, extract_records, parse_records
from jobs_pipeline.cli.main import app

# -- JSON values ---------------------------------------------------------------------------------

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
timestamps = st.datetimes(timezones=st.just(UTC)).map(
    lambda t: t.isoformat(timespec="milliseconds").replace("+00:00", "Z")
)
odd_timestamps = st.sampled_from(
    [
        "2026-11-01T12:00:00",
        "28/10/2024 10:30",
        "",
        "2026-13-01T00:00:00Z",
        "0001-01-01T00:00:00+05:00",
        "now",
    ]
)


def maybe(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the documented type, sometimes any JSON at all."""
    return st.one_of(valid, valid, json_values)


job_like = st.fixed_dictionaries(
    {},
    optional={
        "id": maybe(st.sampled_from(["a", "b", "c", "cmx1"]) | st.text(max_size=6)),
        "userId": maybe(st.text(max_size=6)),
        "targetId": maybe(st.text(max_size=6)),
        "type": maybe(st.sampled_from(["EXTRACTION", "SYNC", "NEW_TYPE"])),
        "status": maybe(st.sampled_from(["PENDING", "IN_PROGRESS", "DONE", "ERROR", "KILLED", "PAUSED"])),
        "progress": maybe(st.integers(-5, 105) | st.floats(-1, 101)),
        "metadata": maybe(st.dictionaries(st.text(max_size=8), json_values, max_size=3)),
        "error": maybe(st.text(max_size=10)),
        "createdAt": maybe(timestamps | odd_timestamps),
        "updatedAt": maybe(timestamps | odd_timestamps),
        "startedAt": maybe(timestamps | odd_timestamps),
        "completedAt": maybe(timestamps | odd_timestamps),
        "unknownField": json_values,
    },
)
records = st.lists(job_like | json_values, max_size=12)


@settings(max_examples=100, deadline=None)
@given(records=records)
def test_the_parser_gives_one_outcome_per_record_and_never_raises(records: list[Any]) -> None:
    jobs, rejects = parse_records(records)
    assert len(jobs) + len(rejects) == len(records)
    assert len({job.id for job in jobs}) == len(jobs)
    for job in jobs:
        assert isinstance(job, Job) and job.id
        assert any(job.raw is record for record in records)
        for instant in (job.created_at, job.updated_at, job.started_at, job.completed_at):
            assert instant is None or instant.utcoffset() == UTC.utcoffset(None)
        assert job.progress is None or 0 <= job.progress <= 100
        assert job.metadata is None or isinstance(job.metadata, dict)
    for reject in rejects:
        assert isinstance(reject, RejectedRecord) and reject.reason
        assert "\n" not in reject.reason


@settings(max_examples=150, deadline=None)
@given(payload=json_values | st.fixed_dictionaries({"success": json_values, "data": json_values}))
def test_any_envelope_is_records_or_an_envelope_error(payload: Any) -> None:
    try:
        data = extract_records(payload)
    except EnvelopeError as exc:
        assert str(exc)
    else:
        assert isinstance(data, list) and data is payload["data"]


# -- the client against any response -------------------------------------------------------------

retry_after_values = st.sampled_from(["0", "1", "-3", "1e9", "nan", "abc", ""]) | st.builds(
    lambda t: t.strftime("%a, %d %b %Y %H:%M:%S GMT"), st.datetimes(min_value=datetime(2000, 1, 1))
)
statuses = st.sampled_from(
    [200, 201, 204, 299, 301, 302, 400, 401, 403, 404, 409, 429, 500, 501, 502, 503, 504, 599]
)
bodies = st.one_of(
    st.binary(max_size=64),
    st.text(max_size=64).map(lambda text: text.encode("utf-8")),
    st.fixed_dictionaries({"success": json_values, "data": records}).map(lambda p: json.dumps(p).encode()),
    st.fixed_dictionaries({"success": st.just(True), "data": records}).map(lambda p: json.dumps(p).encode()),
    st.fixed_dictionaries({"success": st.just(False), "error": json_values}).map(
        lambda p: json.dumps(p).encode()
    ),
)
responses = st.fixed_dictionaries(
    {"status": statuses, "body": bodies},
    optional={
        "retry_after": retry_after_values,
        "date": retry_after_values,
        "location": st.text(max_size=10),
    },
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(answers=st.lists(responses, min_size=1, max_size=4))
def test_the_client_turns_any_response_into_a_page_or_an_api_error(answers: list[dict[str, Any]]) -> None:
    served = iter(answers * 3)
    slept: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        answer = next(served)
        headers = [
            (name, answer[key].encode("utf-8"))  # raw bytes: a server may send any
            for key, name in (("retry_after", "Retry-After"), ("date", "Date"), ("location", "Location"))
            if key in answer and answer[key].isprintable()
        ]
        return httpx.Response(answer["status"], content=answer["body"], headers=headers)

    client = JobsClient(
        "https://api.devana.example",
        KEY,
        transport=httpx.MockTransport(handler),
        sleep=slept.append,
        max_attempts=3,
        rate_limit=100_000,
    )
    with client:
        try:
            page = client.list_jobs()
        except ApiError as exc:
            message = str(exc)
            assert message and "\n" not in message and KEY not in message
        else:
            assert isinstance(page, Page)
            assert len(page.jobs) + len(page.rejects) == page.row_count
            assert page.observed_at.tzinfo is not None
    assert all(0 <= wait <= RETRY_AFTER_CAP_SECONDS for wait in slept)
    assert len(slept) <= 2


# -- the command line --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def urls() -> Iterator[list[str]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with tempfile.TemporaryDirectory() as tmp, soak_twin(Path(tmp) / "unused.duckdb", jobs_per_day=0) as soak:
        yield [soak.url, soak.url + "/", closed, "ftp://" + closed[7:], "http://[::1", "://", "https://", ""]


numbers = st.sampled_from(["nan", "inf", "-inf", "0", "-1", "1e400", "abc", ""]) | st.floats().map(str)
integers = st.sampled_from(["0", "-1", "abc", "", "1.5", "99999999999999999999"]) | st.integers().map(str)
# Small positive rate limits are legal but make a sync wait a minute per request: kept out.
rate_limits = st.sampled_from(["0", "-5", "abc", "100000"]) | st.integers(min_value=1000).map(str)
names = st.text(st.characters(codec="utf-8"), min_size=1, max_size=16)  # no lone surrogates
env_safe = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=24)  # os.environ-safe


def option(name: str, values: st.SearchStrategy[str]) -> st.SearchStrategy[list[str]]:
    return st.one_of(st.just([]), values.map(lambda value: [name, value]))


def db_name(name: str) -> str:
    """A path inside the example's directory, whatever the text (no absolute paths, no '..')."""
    parts = [p for p in name.split("/") if p not in ("", ".", "..")]
    return "/".join(parts) or "archive.duckdb"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    db=names,
    key=st.one_of(st.just(KEY), st.just(None), env_safe),
    extras=st.lists(st.sampled_from(["--json", "--no-such-option", "positional", "--db"]), max_size=2),
)
def test_any_sync_arguments_give_an_answer_never_a_traceback(
    urls: list[str], data: st.DataObject, db: str, key: str | None, extras: list[str]
) -> None:
    args = ["sync"]
    args += data.draw(st.one_of(st.just([]), st.sampled_from(urls).map(lambda url: ["--base-url", url])))
    args += data.draw(option("--tenant", names))
    args += data.draw(option("--poll-interval", numbers))
    args += data.draw(option("--budget", integers))
    args += data.draw(option("--rate-limit", rate_limits))
    args += data.draw(option("--lock-timeout", numbers))
    args += extras
    with (
        tempfile.TemporaryDirectory() as tmp,
        mock.patch.object(JobsClient, "_backoff", lambda self, state: 0.0),
    ):
        env = {
            "DEVANA_API_KEY": key,
            "DEVANA_API_URL": urls[2],
            "JOBS_PIPELINE_DB": str(Path(tmp) / "env.duckdb"),
        }
        result = CliRunner().invoke(app, [*args, "--db", str(Path(tmp) / db_name(db))], env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), (args, result.exception)
    assert "Traceback" not in result.output
    assert result.exit_code in (0, 1, 2, 3), (args, result.exit_code)
    if result.exit_code == 0:
        assert result.stderr == "" and result.stdout.count("\n") == 1
    elif result.stderr.startswith("error: "):
        assert result.stderr.count("\n") == 1, result.stderr
        assert result.stdout == ""
    else:
        assert result.exit_code == 2 and "Usage:" in result.stderr, (args, result.stderr)
