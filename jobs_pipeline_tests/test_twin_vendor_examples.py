"""The vendor doc's own examples (devana-jobs-api.md), run against the twin with the host swapped.

The commands are copied verbatim from the doc, API key placeholder included (the twin is told
to accept "YOUR_API_KEY"). Per API-NOTES.md, `type` filters by status, so the doc's monitoring
script, which passes `type=EXTRACTION`, gets a 400.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from jobs_pipeline.twin import Burst, SteppedClock, Twin, TwinConfig
from jobs_pipeline_tests.conftest import TWIN_START, ServedTwin

VENDOR_HOST = "https://api.devana.ai"
DOC_KEY = "YOUR_API_KEY"
DOC_DOCUMENT = "cm4doc123abc456"

# "Exemples avec curl" and the shell scripts of the doc.
RECENT = 'curl -X GET https://api.devana.ai/v1/jobs -H "Authorization: Bearer YOUR_API_KEY"'
BY_DOCUMENT = 'curl -X GET "https://api.devana.ai/v1/jobs?targetId=cm4doc123abc456" -H "Authorization: Bearer YOUR_API_KEY"'
ERRORS = 'curl -X GET "https://api.devana.ai/v1/jobs?type=ERROR" -H "Authorization: Bearer YOUR_API_KEY"'
PAGINATION = (
    'curl -X GET "https://api.devana.ai/v1/jobs?limit=50&offset=50" -H "Authorization: Bearer YOUR_API_KEY"'
)
MONITORING = (
    'curl -s -X GET "https://api.devana.ai/v1/jobs?targetId=cm4doc123abc456&type=EXTRACTION" '
    '-H "Authorization: Bearer YOUR_API_KEY"'
)
RETRY = 'curl -X POST "https://api.devana.ai/v1/documents/cm4doc123abc456/reextract" -H "Authorization: Bearer YOUR_API_KEY"'

needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


@pytest.fixture(scope="module")
def doc_twin() -> Iterator[ServedTwin]:
    clock = SteppedClock(TWIN_START)
    burst = (Burst(at=TWIN_START - timedelta(minutes=5), count=200),)
    twin = Twin(
        TwinConfig(jobs_per_day=3000, seed=3, api_keys=(DOC_KEY,), rate_limit=None, bursts=burst), clock
    )
    # The document of the doc's examples: extracted, then embedded.
    twin.add_job("EXTRACTION", DOC_DOCUMENT, TWIN_START - timedelta(minutes=30), run_seconds=120)
    twin.add_job("EMBEDDING", DOC_DOCUMENT, TWIN_START - timedelta(minutes=27), run_seconds=3000)
    with twin.serve() as base_url:
        yield ServedTwin(twin, base_url, clock)


def curl(command: str, base_url: str) -> tuple[int, Any]:
    args = shlex.split(command.replace(VENDOR_HOST, base_url))
    done = subprocess.run(
        [*args, "-s", "-w", "\n%{http_code}"], capture_output=True, text=True, timeout=20, check=True
    )
    body, _, status = done.stdout.rpartition("\n")
    return int(status), json.loads(body)


@needs_curl
def test_recent_jobs(doc_twin: ServedTwin) -> None:
    status, body = curl(RECENT, doc_twin.base_url)
    assert status == 200 and body["success"] is True
    assert [row["id"] for row in body["data"]] == [row["id"] for row in doc_twin.twin.visible_jobs()[:25]]


@needs_curl
def test_jobs_of_one_document(doc_twin: ServedTwin) -> None:
    status, body = curl(BY_DOCUMENT, doc_twin.base_url)
    assert status == 200
    assert [(row["type"], row["status"]) for row in body["data"]] == [
        ("EMBEDDING", "IN_PROGRESS"),
        ("EXTRACTION", "DONE"),
    ]


@needs_curl
def test_jobs_in_error(doc_twin: ServedTwin) -> None:
    status, body = curl(ERRORS, doc_twin.base_url)
    assert status == 200 and body["data"]
    assert all(row["status"] == "ERROR" and row["error"] for row in body["data"])


@needs_curl
def test_pagination(doc_twin: ServedTwin) -> None:
    status, body = curl(PAGINATION, doc_twin.base_url)
    assert status == 200
    assert [row["id"] for row in body["data"]] == [row["id"] for row in doc_twin.twin.visible_jobs()[50:100]]


@needs_curl
def test_monitoring_script_passes_a_job_type_and_gets_400(doc_twin: ServedTwin) -> None:
    status, body = curl(MONITORING, doc_twin.base_url)
    assert status == 400 and body["success"] is False and "type" in body["error"]


@needs_curl
def test_retry_script_endpoints_are_not_the_jobs_api(doc_twin: ServedTwin) -> None:
    status, body = curl(RETRY, doc_twin.base_url)
    assert status == 404 and body["success"] is False


def test_documented_request_with_status_filter(doc_twin: ServedTwin, http: httpx.Client) -> None:
    # "GET /v1/jobs?targetId=cm4doc123&type=IN_PROGRESS&limit=10" (the doc's request example).
    headers = {"Authorization": f"Bearer {DOC_KEY}"}
    response = http.get(
        doc_twin.base_url + "/v1/jobs?targetId=cm4doc123&type=IN_PROGRESS&limit=10", headers=headers
    )
    assert response.json() == {"success": True, "data": []}
    response = http.get(
        doc_twin.base_url + f"/v1/jobs?targetId={DOC_DOCUMENT}&type=IN_PROGRESS&limit=10", headers=headers
    )
    (row,) = response.json()["data"]
    assert row["type"] == "EMBEDDING" and row["status"] == "IN_PROGRESS"


def test_python_job_statistics_example(doc_twin: ServedTwin, http: httpx.Client) -> None:
    # JobMonitor.get_job_statistics() from the doc, with httpx instead of requests.
    response = http.get(
        doc_twin.base_url + "/v1/jobs", headers={"Authorization": f"Bearer {DOC_KEY}"}, params={"limit": 100}
    )
    jobs = response.json()["data"]
    stats = {
        status: sum(1 for job in jobs if job["status"] == status)
        for status in ("PENDING", "IN_PROGRESS", "DONE", "ERROR")
    }
    assert len(jobs) == 100 == sum(stats.values())
    assert stats["PENDING"] > 0, "a batch import 5 minutes ago leaves a queue"
