"""client.py on MockTransport: what it sends, what it refuses, how it stamps and walks pages."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from jobs_pipeline.api.client import DEFAULT_USER_AGENT, JobsClient
from jobs_pipeline.api.models import MAX_OFFSET, JobStatus
from jobs_pipeline_tests.test_api_fakes import KEY, Recorder, job_record, make_client, ok


def rows(count: int, start: int = 0) -> list[dict[str, object]]:
    return [job_record(f"job{index:05d}") for index in range(start, start + count)]


def test_sends_only_get_v1_jobs_with_explicit_query_and_headers() -> None:
    recorder = Recorder(ok([]))
    client, _ = make_client(recorder)
    with client:
        client.list_jobs(status="ERROR", target_id="cm4doc 1&x", limit=10, offset=20)
    (request,) = recorder.requests
    assert request.method == "GET"
    assert request.url.path == "/v1/jobs"
    assert request.url.host == "api.example.test"
    assert request.url.params.multi_items() == [
        ("targetId", "cm4doc 1&x"),
        ("type", "ERROR"),
        ("limit", "10"),
        ("offset", "20"),
    ]
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["user-agent"] == DEFAULT_USER_AGENT
    assert request.headers["accept"] == "application/json"


def test_base_url_with_a_path_prefix_is_kept() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return ok([])

    with JobsClient("https://gw.example.test/devana/", KEY, transport=httpx.MockTransport(handler)) as client:
        client.list_jobs()
    assert seen[0].url.path == "/devana/v1/jobs"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": 101}, "limit=101 is outside 1..100"),
        ({"limit": 0}, "limit=0 is outside 1..100"),
        ({"limit": -5}, "outside 1..100"),
        ({"offset": 1001}, "offset=1001 is outside 0..1000"),
        ({"offset": -1}, "offset=-1 is outside 0..1000"),
        ({"status": "EXTRACTION"}, "is a job TYPE, not a status"),
        ({"status": "KILLED"}, "is not one of PENDING, IN_PROGRESS, DONE, ERROR"),
        ({"status": "done"}, "is not one of"),
        ({"target_id": ""}, "target_id must be a non-empty string"),
        ({"limit": True}, "limit must be an int"),
    ],
)
def test_invalid_or_over_cap_queries_are_refused_before_sending(kwargs: dict[str, Any], message: str) -> None:
    recorder = Recorder(ok([]))
    client, _ = make_client(recorder)
    with client, pytest.raises(ValueError, match=message):
        client.list_jobs(**kwargs)
    assert recorder.requests == []


def test_status_enum_members_are_accepted() -> None:
    recorder = Recorder(ok([]))
    client, _ = make_client(recorder)
    with client:
        client.list_jobs(status=JobStatus.IN_PROGRESS, limit=100, offset=MAX_OFFSET)
    assert recorder.queries() == [{"type": "IN_PROGRESS", "limit": "100", "offset": "1000"}]


def test_page_carries_its_query_rows_and_rejects() -> None:
    records = [*rows(2), {"id": "broken"}, job_record("job00000")]
    client, _ = make_client(Recorder(ok(records)))
    with client:
        page = client.list_jobs(status="DONE", limit=10, offset=30)
    assert [job.id for job in page.jobs] == ["job00000", "job00001"]
    assert [reject.job_id for reject in page.rejects] == ["broken", "job00000"]
    assert (page.status, page.target_id, page.offset, page.limit, page.row_count) == ("DONE", None, 30, 10, 4)
    assert page.is_last


def test_observed_at_is_the_servers_date_header() -> None:
    headers = {"Date": "Tue, 29 Oct 2024 08:15:42 GMT"}
    client, _ = make_client(Recorder(ok([], headers=headers)))
    with client:
        page = client.list_jobs()
    assert page.observed_at == datetime(2024, 10, 29, 8, 15, 42, tzinfo=UTC)
    assert page.clock_source == "server"


@pytest.mark.parametrize("headers", [{}, {"Date": "not a date"}])
def test_observed_at_falls_back_to_the_local_utc_clock(headers: dict[str, str]) -> None:
    client, _ = make_client(Recorder(ok([], headers=headers)))
    before = datetime.now(UTC)
    with client:
        page = client.list_jobs()
    assert page.clock_source == "local"
    assert before - timedelta(seconds=1) <= page.observed_at <= datetime.now(UTC)
    assert page.observed_at.tzinfo is not None


def test_one_debug_line_per_request_without_headers(caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder(httpx.Response(500), ok([]))
    client, _ = make_client(recorder)
    caplog.set_level(logging.DEBUG, logger="jobs_pipeline.api")
    with client:
        client.list_jobs(status="DONE", limit=5)
    lines = [record.getMessage() for record in caplog.records if record.levelno == logging.DEBUG]
    assert len(lines) == 2
    assert lines[0].startswith("GET /v1/jobs?type=DONE&limit=5&offset=0 -> 500 in ")
    assert lines[1].startswith("GET /v1/jobs?type=DONE&limit=5&offset=0 -> 200 in ")
    assert all(
        "ms" in line and "Bearer" not in line and "authorization" not in line.lower() for line in lines
    )


def test_counters_add_up_over_several_calls() -> None:
    recorder = Recorder(httpx.Response(429), ok([]), ok([]), httpx.Response(503), ok([]))
    client, _ = make_client(recorder)
    with client:
        for _ in range(3):
            client.list_jobs()
    assert (client.requests_sent, client.responses_429, client.retries, client.pages) == (5, 1, 2, 3)


# -- iter_slice --------------------------------------------------------------------------------


def slice_server(total: int) -> Recorder:
    """Serves `total` rows, honouring limit/offset like the API (newest first)."""

    def handler(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        limit = int(request.url.params["limit"])
        return ok(rows(max(0, min(limit, total - offset)), start=offset))

    return Recorder(handler)


def test_walk_stops_at_the_first_short_page() -> None:
    recorder = slice_server(250)
    client, _ = make_client(recorder)
    with client:
        walk = client.iter_slice(status="DONE")
        pages = list(walk)
    assert [page.offset for page in pages] == [0, 100, 200]
    assert [page.row_count for page in pages] == [100, 100, 50]
    assert walk.done and not walk.hit_cap and walk.rows == 250 and walk.pages == pages
    assert [query["type"] for query in recorder.queries()] == ["DONE"] * 3


def test_walk_of_an_exact_multiple_needs_one_empty_page_to_know_it_ended() -> None:
    recorder = slice_server(200)
    client, _ = make_client(recorder)
    with client:
        walk = client.iter_slice()
        pages = list(walk)
    assert [page.row_count for page in pages] == [100, 100, 0]
    assert not walk.hit_cap


def test_walk_reports_hitting_the_offset_cap() -> None:
    recorder = slice_server(5000)
    client, _ = make_client(recorder)
    with client:
        walk = client.iter_slice(status="DONE")
        pages = list(walk)
    assert [page.offset for page in pages] == list(range(0, 1001, 100))
    assert walk.hit_cap and walk.rows == 1100
    assert max(int(query["offset"]) for query in recorder.queries()) == MAX_OFFSET


def test_walk_with_exactly_the_reachable_rows_still_reports_the_cap() -> None:
    # 1,100 rows fill the last reachable page: whether a 1,101st exists is unknowable.
    client, _ = make_client(slice_server(1100))
    with client:
        walk = client.iter_slice()
        list(walk)
    assert walk.hit_cap


def test_walk_honours_page_size_and_start_offset_and_never_passes_the_cap() -> None:
    recorder = slice_server(5000)
    client, _ = make_client(recorder)
    with client:
        walk = client.iter_slice(target_id="cm4doc1", page_size=30, start_offset=900)
        pages = list(walk)
    assert [page.offset for page in pages] == [900, 930, 960, 990]
    assert walk.hit_cap
    assert all(query["targetId"] == "cm4doc1" and query["limit"] == "30" for query in recorder.queries())


def test_walk_is_lazy_and_validated_eagerly() -> None:
    recorder = slice_server(1000)
    client, _ = make_client(recorder)
    with client:
        walk = client.iter_slice()
        assert recorder.requests == []
        first = next(walk)
        assert first.offset == 0 and len(recorder.requests) == 1
        with pytest.raises(ValueError, match="page_size=101"):
            client.iter_slice(page_size=101)
        with pytest.raises(ValueError, match="start_offset=1001"):
            client.iter_slice(start_offset=1001)
        with pytest.raises(ValueError, match="job TYPE"):
            client.iter_slice(status="SYNC")


@pytest.mark.parametrize("base_url", ["api.devana.ai", "ftp://api.devana.ai", "https://api.devana.ai/?x=1"])
def test_bad_base_urls_are_refused(base_url: str) -> None:
    with pytest.raises(ValueError, match="base_url"):
        JobsClient(base_url, KEY, transport=httpx.MockTransport(lambda request: ok([])))


def test_close_closes_the_http_client() -> None:
    client, _ = make_client(Recorder(ok([])))
    with client:
        pass
    with pytest.raises(RuntimeError):
        client.list_jobs()
