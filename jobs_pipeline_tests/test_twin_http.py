"""Conformance of the twin's GET /v1/jobs with the API contract, checked over real HTTP."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest

from jobs_pipeline.twin import AcceleratedClock, Burst, Quirks, SteppedClock, Twin, TwinConfig
from jobs_pipeline_tests.conftest import TWIN_KEY, TWIN_START, MakeTwin, ServedTwin

ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
CUID = re.compile(r"^cm[0-9a-z]{23}$")
JOB_FIELDS = {
    "id",
    "userId",
    "targetId",
    "type",
    "status",
    "progress",
    "metadata",
    "error",
    "startedAt",
    "completedAt",
    "createdAt",
    "updatedAt",
}
JOB_TYPES = {"EXTRACTION", "EMBEDDING", "SYNC", "IMPORT", "TRANSCRIPTION", "GENERATION"}
STATUSES = ("PENDING", "IN_PROGRESS", "DONE", "ERROR")
# A batch import 10 minutes before the clock starts: the pool is busy and jobs queue (PENDING).
RECENT_BURST = (Burst(at=TWIN_START - timedelta(minutes=10), count=300),)


def get(http: httpx.Client, base_url: str, path: str = "/v1/jobs", key: str | None = TWIN_KEY, **params: Any):
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    return http.get(base_url + path, params=params, headers=headers)


def jobs(http: httpx.Client, base_url: str, **params: Any) -> list[dict[str, Any]]:
    response = get(http, base_url, **params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    return body["data"]


def assert_error(response: httpx.Response, status: int) -> None:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["success"] is False
    assert isinstance(body["error"], str) and body["error"]


@pytest.fixture(scope="module")
def busy() -> Iterator[ServedTwin]:
    """A read-only twin at 6,000 jobs/day with a backlog: tests must not change it."""
    clock = SteppedClock(TWIN_START)
    config = TwinConfig(jobs_per_day=6000, seed=7, rate_limit=None, bursts=RECENT_BURST)
    twin = Twin(config, clock=clock)
    with twin.serve() as base_url:
        yield ServedTwin(twin, base_url, clock)


# -- auth, envelope, routing --------------------------------------------------------------------


def test_auth_is_required_and_checked(twin: ServedTwin, http: httpx.Client) -> None:
    assert_error(get(http, twin.base_url, key=None), 401)
    assert_error(get(http, twin.base_url, key="wrong-key"), 401)
    scheme = http.get(twin.base_url + "/v1/jobs", headers={"Authorization": f"Token {TWIN_KEY}"})
    assert_error(scheme, 401)
    assert get(http, twin.base_url).status_code == 200
    assert [record.key_ok for record in twin.twin.requests] == [False, False, False, True]


@pytest.mark.parametrize("twin", [{"api_keys": ("k1", "k2"), "jobs_per_day": 0}], indirect=True)
def test_every_configured_key_is_accepted(twin: ServedTwin, http: httpx.Client) -> None:
    for key in ("k1", "k2"):
        assert get(http, twin.base_url, key=key).status_code == 200
    assert_error(get(http, twin.base_url, key=TWIN_KEY), 401)


def test_success_envelope_and_content_type(busy: ServedTwin, http: httpx.Client) -> None:
    response = get(http, busy.base_url)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"success", "data"}
    assert body["success"] is True and isinstance(body["data"], list) and body["data"]


@pytest.mark.parametrize("path", ["/", "/v1/job", "/v1/jobs/abc", "/v2/jobs", "/v1/documents/x/reextract"])
def test_other_paths_are_404_with_the_envelope(busy: ServedTwin, http: httpx.Client, path: str) -> None:
    assert_error(get(http, busy.base_url, path), 404)
    assert_error(http.post(busy.base_url + path), 404)


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_other_methods_are_405(busy: ServedTwin, http: httpx.Client, method: str) -> None:
    response = http.request(method, busy.base_url + "/v1/jobs", content=b'{"x": 1}')
    assert_error(response, 405)
    assert response.headers["allow"] == "GET"
    # The keep-alive connection stays usable after a request that carried a body.
    assert get(http, busy.base_url).status_code == 200


def test_head_is_405_without_a_body(busy: ServedTwin, http: httpx.Client) -> None:
    response = http.head(busy.base_url + "/v1/jobs")
    assert response.status_code == 405
    assert response.content == b""


# -- the `type` (status) filter, targetId --------------------------------------------------------


@pytest.mark.parametrize("status", STATUSES)
def test_type_filters_by_status(busy: ServedTwin, http: httpx.Client, status: str) -> None:
    rows = jobs(http, busy.base_url, type=status, limit=100)
    assert rows, f"the busy twin should have {status} jobs"
    assert {row["status"] for row in rows} == {status}
    expected = [row["id"] for row in busy.twin.visible_jobs(status=status)][:100]
    assert [row["id"] for row in rows] == expected


@pytest.mark.parametrize("value", ["EXTRACTION", "KILLED", "done", "", "DONE,ERROR"])
def test_type_outside_the_four_statuses_is_400(busy: ServedTwin, http: httpx.Client, value: str) -> None:
    assert_error(get(http, busy.base_url, type=value), 400)


def test_target_id_filter(busy: ServedTwin, http: httpx.Client) -> None:
    counts: dict[str, int] = {}
    for row in busy.twin.visible_jobs():
        counts[row["targetId"]] = counts.get(row["targetId"], 0) + 1
    target = max(counts, key=lambda key: counts[key])
    assert counts[target] > 1, "folders are shared, some target must repeat"
    rows = jobs(http, busy.base_url, targetId=target, limit=100)
    assert {row["targetId"] for row in rows} == {target}
    assert len(rows) == min(100, counts[target])
    assert jobs(http, busy.base_url, targetId="cm-no-such-target") == []


def test_target_and_status_filters_combine(busy: ServedTwin, http: httpx.Client) -> None:
    target = busy.twin.visible_jobs(status="DONE")[0]["targetId"]
    rows = jobs(http, busy.base_url, targetId=target, type="DONE")
    assert rows and all(row["targetId"] == target and row["status"] == "DONE" for row in rows)


# -- limit / offset --------------------------------------------------------------------------------


def test_limit_defaults_to_25_and_goes_to_100(busy: ServedTwin, http: httpx.Client) -> None:
    assert len(jobs(http, busy.base_url)) == 25
    assert len(jobs(http, busy.base_url, limit=1)) == 1
    assert len(jobs(http, busy.base_url, limit=100)) == 100


def test_offset_reaches_1000_and_pages_tile_the_list(busy: ServedTwin, http: httpx.Client) -> None:
    visible = [row["id"] for row in busy.twin.visible_jobs()]
    assert len(visible) > 1100
    pages = [jobs(http, busy.base_url, limit=100, offset=offset) for offset in range(0, 1001, 100)]
    assert [row["id"] for page in pages for row in page] == visible[:1100]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 101},
        {"limit": 0},
        {"limit": -1},
        {"limit": "1.5"},
        {"limit": "ten"},
        {"limit": ""},
        {"limit": "1e2"},
        {"offset": 1001},
        {"offset": -1},
        {"offset": "0x10"},
        {"offset": " 5"},
    ],
)
def test_bad_limit_or_offset_is_400(busy: ServedTwin, http: httpx.Client, params: dict[str, Any]) -> None:
    assert_error(get(http, busy.base_url, **params), 400)


def test_repeated_parameters_are_400(busy: ServedTwin, http: httpx.Client) -> None:
    headers = {"Authorization": f"Bearer {TWIN_KEY}"}
    assert_error(http.get(busy.base_url + "/v1/jobs?type=DONE&type=ERROR", headers=headers), 400)
    assert_error(http.get(busy.base_url + "/v1/jobs?limit=10&limit=20", headers=headers), 400)


def test_unknown_parameters_are_ignored(busy: ServedTwin, http: httpx.Client) -> None:
    since = jobs(http, busy.base_url, updatedSince="2026-11-01T00:00:00.000Z")
    assert since == jobs(http, busy.base_url)


def test_clamp_quirk_clamps_over_limit_values(make_twin: MakeTwin, http: httpx.Client) -> None:
    served = make_twin(quirks=Quirks(clamp_over_limit=True))
    assert len(jobs(http, served.base_url, limit=500)) == 100
    clamped = jobs(http, served.base_url, limit=100, offset=5000)
    assert clamped == jobs(http, served.base_url, limit=100, offset=1000)
    assert_error(get(http, served.base_url, limit=-5), 400)


# -- order and the 24 h window ---------------------------------------------------------------------


def test_order_is_created_at_descending(busy: ServedTwin, http: httpx.Client) -> None:
    rows = jobs(http, busy.base_url, limit=100, offset=300)
    keys = [(row["createdAt"], row["id"]) for row in rows]
    assert keys == sorted(keys, reverse=True)


@pytest.mark.parametrize("twin", [0], indirect=True)
def test_created_at_ties_are_broken_by_id_descending(twin: ServedTwin, http: httpx.Client) -> None:
    instant = twin.clock.now() - timedelta(minutes=5)
    ids = [twin.twin.add_job(created_at=instant) for _ in range(6)]
    rows = jobs(http, twin.base_url)
    assert [row["id"] for row in rows] == sorted(ids, reverse=True)
    assert len({row["createdAt"] for row in rows}) == 1


@pytest.mark.parametrize("twin", [0], indirect=True)
def test_only_the_last_24_hours_are_visible(twin: ServedTwin, http: httpx.Client) -> None:
    now = twin.clock.now()
    inside = twin.twin.add_job(created_at=now - timedelta(hours=24) + timedelta(seconds=1))
    edge = twin.twin.add_job(created_at=now - timedelta(hours=24))
    future = twin.twin.add_job(created_at=now + timedelta(seconds=30))
    assert [row["id"] for row in jobs(http, twin.base_url)] == [inside]
    twin.clock.advance(timedelta(seconds=1))
    assert jobs(http, twin.base_url) == []
    twin.clock.advance(timedelta(seconds=30))
    assert [row["id"] for row in jobs(http, twin.base_url)] == [future]
    assert {job["id"] for job in twin.twin.ground_truth()} == {inside, edge, future}


def test_background_jobs_respect_the_window(busy: ServedTwin, http: httpx.Client) -> None:
    now = busy.clock.now()
    oldest = busy.twin.visible_jobs()[-1]["createdAt"]
    assert datetime.fromisoformat(oldest) > now - timedelta(hours=24)
    assert datetime.fromisoformat(oldest) < now - timedelta(hours=23, minutes=55)
    newest = jobs(http, busy.base_url, limit=1)[0]["createdAt"]
    assert now - timedelta(minutes=5) < datetime.fromisoformat(newest) <= now


@pytest.mark.parametrize("twin", [0], indirect=True)
def test_killed_jobs_are_never_returned(twin: ServedTwin, http: httpx.Client) -> None:
    running = twin.twin.add_job(run_seconds=600)
    queued = twin.twin.add_job(queue_seconds=600)
    scripted_kill = twin.twin.add_job(queue_seconds=10, run_seconds=100, kill_after_seconds=30)
    twin.clock.advance(timedelta(seconds=5))
    assert {row["id"] for row in jobs(http, twin.base_url)} == {running, queued, scripted_kill}
    assert twin.twin.kill(running) and twin.twin.kill(queued)
    assert not twin.twin.kill(queued), "a job dies once"
    twin.clock.advance(timedelta(seconds=60))
    assert jobs(http, twin.base_url) == []
    for status in STATUSES:
        assert jobs(http, twin.base_url, type=status) == []
    truth = {job["id"]: job for job in twin.twin.ground_truth()}
    assert {truth[job_id]["finalStatus"] for job_id in (running, queued, scripted_kill)} == {"KILLED"}
    assert [step["status"] for step in truth[queued]["history"]] == ["PENDING", "KILLED"]
    assert [step["status"] for step in truth[running]["history"]] == ["PENDING", "IN_PROGRESS", "KILLED"]


# -- rate limit ------------------------------------------------------------------------------------


def test_rate_limit_per_key_then_retry_after_seconds(make_twin: MakeTwin, http: httpx.Client) -> None:
    served = make_twin(jobs_per_day=0, rate_limit=3, rate_window_seconds=30.0, api_keys=(TWIN_KEY, "other"))
    assert [get(http, served.base_url).status_code for _ in range(3)] == [200, 200, 200]
    limited = get(http, served.base_url)
    assert_error(limited, 429)
    assert 1 <= int(limited.headers["retry-after"]) <= 30
    assert get(http, served.base_url, key="other").status_code == 200
    assert [record.status_code for record in served.twin.requests] == [200, 200, 200, 429, 200]


def test_rate_limit_window_slides_in_real_time(make_twin: MakeTwin, http: httpx.Client) -> None:
    served = make_twin(jobs_per_day=0, rate_limit=2, rate_window_seconds=2.0)
    first = time.monotonic()
    assert [get(http, served.base_url).status_code for _ in range(3)] == [200, 200, 429]
    # The twin clock is frozen: only real time frees the window.
    time.sleep(max(0.0, first + 2.05 - time.monotonic()))
    assert get(http, served.base_url).status_code == 200


@pytest.mark.parametrize("fmt", ["http-date", "none", "mixed"])
def test_retry_after_formats(make_twin: MakeTwin, http: httpx.Client, fmt: str) -> None:
    served = make_twin(jobs_per_day=0, rate_limit=1, rate_window_seconds=30.0, retry_after_format=fmt)
    get(http, served.base_url)
    limited = [get(http, served.base_url) for _ in range(3)]
    assert {response.status_code for response in limited} == {429}
    values = [response.headers.get("retry-after") for response in limited]
    if fmt == "none":
        assert values == [None, None, None]
    elif fmt == "http-date":
        for response in limited:
            retry_at = parsedate_to_datetime(response.headers["retry-after"])
            wait = retry_at - parsedate_to_datetime(response.headers["date"])
            assert timedelta(seconds=1) <= wait <= timedelta(seconds=30)
    else:
        shapes = {None if v is None else ("seconds" if v.isdigit() else "date") for v in values}
        assert shapes == {None, "seconds", "date"}


# -- headers and the job objects -------------------------------------------------------------------


@pytest.mark.parametrize("twin", [0], indirect=True)
def test_date_header_is_the_twin_clock(twin: ServedTwin, http: httpx.Client) -> None:
    first = parsedate_to_datetime(get(http, twin.base_url).headers["date"])
    twin.clock.advance(timedelta(hours=3, seconds=7))
    second = parsedate_to_datetime(get(http, twin.base_url).headers["date"])
    assert first == TWIN_START
    assert second - first == timedelta(hours=3, seconds=7)


def test_date_header_quirk_can_drop_it(make_twin: MakeTwin, http: httpx.Client) -> None:
    served = make_twin(jobs_per_day=0, quirks=Quirks(date_header=False))
    assert "date" not in get(http, served.base_url).headers


def test_job_objects_follow_the_contract(busy: ServedTwin, http: httpx.Client) -> None:
    rows = [row for status in STATUSES for row in jobs(http, busy.base_url, type=status, limit=100)]
    for row in rows:
        assert set(row) <= JOB_FIELDS, set(row) - JOB_FIELDS
        assert {"id", "userId", "targetId", "type", "status", "createdAt", "updatedAt"} <= set(row)
        for key in ("id", "userId", "targetId"):
            assert CUID.match(row[key]), row[key]
        for key in ("startedAt", "completedAt", "createdAt", "updatedAt"):
            if key in row:
                assert ISO_MS.match(row[key]), row[key]
        assert row["type"] in JOB_TYPES
        assert ("startedAt" in row) == (row["status"] != "PENDING")
        assert ("completedAt" in row) == (row["status"] in ("DONE", "ERROR"))
        assert ("error" in row) == (row["status"] == "ERROR")
        if "progress" in row:
            assert isinstance(row["progress"], int) and 0 <= row["progress"] <= 100
            assert row["progress"] == 100 if row["status"] == "DONE" else row["progress"] < 100
        if "metadata" in row:
            assert isinstance(row["metadata"], dict)
        assert row["createdAt"] <= row.get("startedAt", row["createdAt"]) <= row["updatedAt"]
        if "completedAt" in row:
            assert row["completedAt"] == row["updatedAt"]
    assert {row["status"] for row in rows} == set(STATUSES)
    assert any("progress" not in row for row in rows) and any("metadata" not in row for row in rows)


def test_metadata_has_the_doc_shape(busy: ServedTwin) -> None:
    extraction_keys = {"fileName", "fileSize", "mimeType", "pageCount", "extractionMethod"}
    embedding_keys = {"folderName", "filesProcessed", "totalChunks", "chunkSize", "model"}
    rows = busy.twin.visible_jobs()
    extraction = [row["metadata"] for row in rows if row["type"] == "EXTRACTION" and "metadata" in row]
    embedding = [row["metadata"] for row in rows if row["type"] == "EMBEDDING" and "metadata" in row]
    assert all(set(meta) <= extraction_keys for meta in extraction)
    assert all(set(meta) <= embedding_keys for meta in embedding)
    # Keys come and go, but most jobs carry the full shape.
    assert sum(set(meta) == extraction_keys for meta in extraction) > len(extraction) / 2
    assert any(set(meta) != extraction_keys for meta in extraction)


def test_extra_fields_quirk_adds_unknown_fields(make_twin: MakeTwin, http: httpx.Client) -> None:
    served = make_twin(quirks=Quirks(extra_fields=True))
    rows = jobs(http, served.base_url)
    assert all(set(row) - JOB_FIELDS == {"priority", "queue"} for row in rows)


# -- the request log, the hook and the control endpoints -------------------------------------------


def test_requests_are_logged(twin: ServedTwin, http: httpx.Client) -> None:
    jobs(http, twin.base_url, type="DONE", limit=5)
    http.delete(twin.base_url + "/v1/jobs")
    http.get(twin.base_url + "/_twin/status")  # control endpoints are not part of the log
    records = twin.twin.requests
    assert [(r.method, r.path, r.query, r.status_code, r.key_ok) for r in records] == [
        ("GET", "/v1/jobs", {"type": "DONE", "limit": "5"}, 200, True),
        ("DELETE", "/v1/jobs", {}, 405, False),
    ]
    assert [r.index for r in records] == [0, 1]
    assert records[0].at == "2026-11-01T12:00:00.000Z"


@pytest.mark.parametrize("twin", [0], indirect=True)
def test_before_request_hook_runs_before_serving(twin: ServedTwin, http: httpx.Client) -> None:
    added: dict[int, str] = {}

    def hook(index: int) -> None:
        if index == 1:
            twin.clock.advance(timedelta(minutes=1))
            added[index] = twin.twin.add_job(run_seconds=5)

    twin.twin.before_request = hook
    assert jobs(http, twin.base_url) == []
    assert [row["id"] for row in jobs(http, twin.base_url)] == [added[1]]
    assert twin.twin.requests[1].at == "2026-11-01T12:01:00.000Z"


def test_a_failing_hook_is_a_500_not_a_dead_server(twin: ServedTwin, http: httpx.Client) -> None:
    def hook(index: int) -> None:
        raise RuntimeError("boom")

    twin.twin.before_request = hook
    response = get(http, twin.base_url)
    assert_error(response, 500)
    assert "boom" in response.json()["error"]


def test_control_endpoints(twin: ServedTwin, http: httpx.Client) -> None:
    base = twin.base_url
    assert http.get(base + "/_twin/truth").json() == twin.twin.ground_truth()
    assert (
        http.post(base + "/_twin/advance", params={"seconds": 90}).json()["now"] == "2026-11-01T12:01:30.000Z"
    )
    assert twin.clock.now() == TWIN_START + timedelta(seconds=90)
    assert http.post(base + "/_twin/advance", params={"seconds": "x"}).status_code == 400
    assert http.post(base + "/_twin/faults", params={"kind": "503", "n": 2}).json()["scripted"] == [
        "503",
        "503",
    ]
    assert http.post(base + "/_twin/faults", params={"kind": "nope"}).status_code == 400
    assert http.get(base + "/_twin/status").json()["workers"] == twin.twin.workers
    assert http.get(base + "/_twin/nothing").status_code == 404
    assert [get(http, base).status_code for _ in range(3)] == [503, 503, 200]
    assert [r["status_code"] for r in http.get(base + "/_twin/requests").json()] == [503, 503, 200]


def test_advance_needs_a_stepped_clock(http: httpx.Client) -> None:
    clock = AcceleratedClock(speed=10, start=datetime(2026, 1, 1, tzinfo=UTC))
    twin = Twin(TwinConfig(jobs_per_day=0), clock=clock)
    with twin.serve() as base_url:
        assert http.post(base_url + "/_twin/advance?seconds=5").status_code == 409
