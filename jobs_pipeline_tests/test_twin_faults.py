"""Injected faults, each kind seen from a real HTTP client, and their independence from truth."""

from __future__ import annotations

import json
from datetime import timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest

from jobs_pipeline.twin import FAULT_KINDS, FaultConfig
from jobs_pipeline.twin.faults import BAD_RECORD_VARIANTS
from jobs_pipeline_tests.conftest import TWIN_KEY, MakeTwin, ServedTwin

AUTH = {"Authorization": f"Bearer {TWIN_KEY}"}
REQUIRED = {
    "id": str,
    "userId": str,
    "targetId": str,
    "type": str,
    "status": str,
    "createdAt": str,
    "updatedAt": str,
}


def get(http: httpx.Client, served: ServedTwin, **params: Any) -> httpx.Response:
    return http.get(served.base_url + "/v1/jobs", params={"limit": 10, **params}, headers=AUTH)


def contract_violations(row: Any) -> list[str]:
    if not isinstance(row, dict):
        return ["not an object"]
    problems = [
        f"{key} missing or not {kind.__name__}"
        for key, kind in REQUIRED.items()
        if not isinstance(row.get(key), kind)
    ]
    if "progress" in row and not isinstance(row["progress"], int):
        problems.append("progress not an int")
    if "metadata" in row and not isinstance(row["metadata"], dict):
        problems.append("metadata not an object")
    for key in ("createdAt", "updatedAt"):
        if isinstance(row.get(key), str) and not row[key].endswith("Z"):
            problems.append(f"{key} not ISO-8601")
    return problems


@pytest.mark.parametrize("kind", ["500", "503"])
def test_server_errors_use_the_json_envelope(twin: ServedTwin, http: httpx.Client, kind: str) -> None:
    twin.twin.faults.fail_next(1, kind)
    response = get(http, twin)
    assert response.status_code == int(kind)
    assert response.json()["success"] is False
    if kind == "503":
        assert response.headers["retry-after"] == "1"
    assert get(http, twin).status_code == 200, "one scripted fault, then business as usual"


def test_502_comes_from_a_proxy_as_html(twin: ServedTwin, http: httpx.Client) -> None:
    twin.twin.faults.fail_next(1, "502")
    response = get(http, twin)
    assert response.status_code == 502
    assert response.headers["content-type"].startswith("text/html")
    with pytest.raises(json.JSONDecodeError):
        response.json()


@pytest.mark.parametrize("twin", [{"retry_after_format": "http-date"}], indirect=True)
def test_injected_429_carries_retry_after(twin: ServedTwin, http: httpx.Client) -> None:
    twin.twin.faults.storm_429(3)
    storm = [get(http, twin) for _ in range(4)]
    assert [response.status_code for response in storm] == [429, 429, 429, 200]
    for response in storm[:3]:
        wait = parsedate_to_datetime(response.headers["retry-after"]) - parsedate_to_datetime(
            response.headers["date"]
        )
        assert wait == timedelta(seconds=1)
    assert [record.fault for record in twin.twin.requests] == ["429", "429", "429", None]


@pytest.mark.parametrize("twin", [{"faults": FaultConfig(timeout_seconds=0.6)}], indirect=True)
def test_timeout_stalls_past_the_client_timeout(twin: ServedTwin, http: httpx.Client) -> None:
    twin.twin.faults.fail_next(1, "timeout")
    with pytest.raises(httpx.ReadTimeout):
        http.get(twin.base_url + "/v1/jobs", headers=AUTH, timeout=0.2)
    assert get(http, twin).status_code == 200


def test_reset_closes_the_connection_without_a_response(twin: ServedTwin, http: httpx.Client) -> None:
    twin.twin.faults.fail_next(1, "reset")
    with pytest.raises(httpx.TransportError):
        get(http, twin)
    assert twin.twin.requests[-1].status_code is None
    assert get(http, twin).status_code == 200


def test_truncated_body_is_a_protocol_error(twin: ServedTwin, http: httpx.Client) -> None:
    twin.twin.faults.fail_next(1, "truncated")
    with pytest.raises(httpx.RemoteProtocolError):
        get(http, twin)
    assert get(http, twin).status_code == 200


def test_invalid_json_is_a_200_that_does_not_parse(twin: ServedTwin, http: httpx.Client) -> None:
    twin.twin.faults.fail_next(1, "invalid_json")
    response = get(http, twin)
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_bad_record_breaks_exactly_one_row(twin: ServedTwin, http: httpx.Client) -> None:
    clean = get(http, twin).json()["data"]
    assert all(not contract_violations(row) for row in clean)
    twin.twin.faults.fail_next(len(BAD_RECORD_VARIANTS) * 3, "bad_record")
    for _ in range(len(BAD_RECORD_VARIANTS) * 3):
        data = get(http, twin).json()["data"]
        assert len(data) == len(clean)
        broken = [row for row in data if contract_violations(row)]
        assert len(broken) == 1
        assert [row for row in data if not contract_violations(row)] == [row for row in clean if row in data]


def test_duplicate_ids_within_a_page(twin: ServedTwin, http: httpx.Client) -> None:
    twin.twin.faults.fail_next(1, "duplicate_ids")
    ids = [row["id"] for row in get(http, twin).json()["data"]]
    assert len(ids) == 10 and len(set(ids)) == 9


@pytest.mark.parametrize("twin", [{"faults": FaultConfig(huge_metadata_bytes=1_000_000)}], indirect=True)
def test_huge_metadata(twin: ServedTwin, http: httpx.Client) -> None:
    twin.twin.faults.fail_next(1, "huge_metadata")
    response = get(http, twin)
    assert len(response.content) > 1_000_000
    sizes = [len(json.dumps(row.get("metadata", {}))) for row in response.json()["data"]]
    assert max(sizes) > 1_000_000 and sorted(sizes)[-2] < 10_000


def test_odd_unicode(twin: ServedTwin, http: httpx.Client) -> None:
    twin.twin.faults.fail_next(1, "odd_unicode")
    response = get(http, twin)
    assert b"\\u0000" in response.content, "NUL travels as a JSON escape"
    odd = [row for row in response.json()["data"] if "\u202e" in json.dumps(row, ensure_ascii=False)]
    assert len(odd) == 1
    name = odd[0]["metadata"]["fileName"]
    for needle in ("\u202e", "\u200f", "🚀", "\x00", "\u0301", "\u200d"):
        assert needle in name


def test_faults_come_after_auth(twin: ServedTwin, http: httpx.Client) -> None:
    twin.twin.faults.fail_next(1, "500")
    assert http.get(twin.base_url + "/v1/jobs").status_code == 401
    assert get(http, twin).status_code == 500


def test_unknown_kinds_are_refused() -> None:
    with pytest.raises(ValueError):
        FaultConfig(rate=0.1, kinds=("500", "teapot"))
    with pytest.raises(ValueError):
        FaultConfig(rate=1.5)


def random_run(make_twin: MakeTwin, http: httpx.Client, seed: int) -> list[tuple[int, str | None]]:
    faults = FaultConfig(rate=0.4, kinds=("500", "503", "invalid_json", "duplicate_ids"), seed=seed)
    served = make_twin(jobs_per_day=500, rate_limit=None, faults=faults)
    for _ in range(40):
        get(http, served)
    return [(record.status_code or 0, record.fault) for record in served.twin.requests]


def test_random_faults_follow_rate_and_kinds_deterministically(
    make_twin: MakeTwin, http: httpx.Client
) -> None:
    first = random_run(make_twin, http, seed=3)
    again = random_run(make_twin, http, seed=3)
    other = random_run(make_twin, http, seed=4)
    assert first == again
    assert first != other
    faults = [fault for _, fault in first if fault is not None]
    assert 6 <= len(faults) <= 28
    assert set(faults) <= {"500", "503", "invalid_json", "duplicate_ids"}
    assert len(set(faults)) >= 3


def test_default_kinds_cover_every_fault() -> None:
    assert FaultConfig().kinds == FAULT_KINDS
    assert len(FAULT_KINDS) == 12


def test_faults_never_change_the_truth(make_twin: MakeTwin, http: httpx.Client) -> None:
    calm = make_twin(jobs_per_day=3000, rate_limit=None)
    stormy = make_twin(
        jobs_per_day=3000,
        rate_limit=None,
        faults=FaultConfig(rate=0.5, kinds=("500", "bad_record", "duplicate_ids")),
    )
    for served in (calm, stormy):
        for _ in range(10):
            get(http, served, type="DONE")
            served.clock.advance(timedelta(minutes=3))
    assert calm.twin.ground_truth() == stormy.twin.ground_truth()
    assert any(record.fault for record in stormy.twin.requests)


def test_fault_plan_can_change_mid_run(twin: ServedTwin, http: httpx.Client) -> None:
    twin.twin.faults.configure(rate=1.0, kinds=("503",))
    assert get(http, twin).status_code == 503
    twin.twin.faults.configure(rate=0.0)
    assert get(http, twin).status_code == 200
    twin.twin.faults.fail_next(2, "500")
    assert twin.twin.faults.scripted == ("500", "500")
    twin.twin.faults.clear()
    assert get(http, twin).status_code == 200
