"""parse.py: tolerant parsing of records and envelopes (examples + hypothesis properties)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs_pipeline.api.models import Job, RejectedRecord
from jobs_pipeline.api.parse import (
    DUPLICATE_REASON,
    UNKNOWN_TYPE,
    EnvelopeError,
    extract_records,
    parse_job,
    parse_records,
    parse_timestamp,
)
from jobs_pipeline_tests.test_api_fakes import job_record


def as_job(record: Any) -> Job:
    outcome = parse_job(record)
    assert isinstance(outcome, Job), outcome
    return outcome


def as_reject(record: Any) -> RejectedRecord:
    outcome = parse_job(record)
    assert isinstance(outcome, RejectedRecord), outcome
    return outcome


def test_vendor_example_record_parses_every_field() -> None:
    job = as_job(job_record())
    assert (job.id, job.user_id, job.target_id) == ("cm4job1", "cm4user1", "cm4doc1")
    assert (job.type, job.status, job.progress) == ("EXTRACTION", "IN_PROGRESS", 65)
    assert job.metadata == {"fileName": "rapport.pdf", "pageCount": 45}
    assert job.started_at == datetime(2024, 10, 28, 10, 30, tzinfo=UTC)
    assert job.updated_at == datetime(2024, 10, 28, 10, 35, 0, 123_000, tzinfo=UTC)
    assert job.completed_at is None and job.error is None
    assert job.raw == job_record()


def test_unknown_fields_types_and_statuses_are_kept() -> None:
    record = job_record(type="VECTOR_REBUILD", status="PAUSED", priority=3, tags=["a"])
    job = as_job(record)
    assert (job.type, job.status) == ("VECTOR_REBUILD", "PAUSED")
    assert job.raw["priority"] == 3 and job.raw["tags"] == ["a"]


def test_optional_fields_may_be_absent_or_null() -> None:
    record = job_record()
    for key in ("userId", "targetId", "progress", "metadata", "startedAt"):
        del record[key]
    record["completedAt"] = None
    record["error"] = None
    job = as_job(record)
    assert job.user_id is None and job.target_id is None and job.progress is None
    assert job.metadata is None and job.started_at is None and job.completed_at is None


def test_missing_type_becomes_unknown_not_a_reject() -> None:
    record = job_record()
    del record["type"]
    assert as_job(record).type == UNKNOWN_TYPE


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-10-28T10:30:00.000Z", datetime(2024, 10, 28, 10, 30, tzinfo=UTC)),
        ("2024-10-28T10:30:00.5Z", datetime(2024, 10, 28, 10, 30, 0, 500_000, tzinfo=UTC)),
        ("2024-10-28T12:30:00.001+02:00", datetime(2024, 10, 28, 10, 30, 0, 1_000, tzinfo=UTC)),
        ("2024-10-28T05:00:00.999-05:30", datetime(2024, 10, 28, 10, 30, 0, 999_000, tzinfo=UTC)),
        ("2024-10-28T10:30:00Z", datetime(2024, 10, 28, 10, 30, tzinfo=UTC)),
    ],
)
def test_timestamps_become_exact_utc(text: str, expected: datetime) -> None:
    parsed = parse_timestamp(text)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize("text", ["2024-10-28T10:30:00.000", "2024-10-28", "yesterday", ""])
def test_timestamps_without_zone_or_garbage_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_timestamp(text)


@pytest.mark.parametrize(
    ("overrides", "reason_part"),
    [
        ({"id": None}, "missing 'id'"),
        ({"id": ""}, "'id' is empty"),
        ({"id": 42}, "'id' is a JSON number"),
        ({"status": None}, "missing 'status'"),
        ({"status": ["DONE"]}, "'status' is a JSON array"),
        ({"createdAt": None}, "missing 'createdAt'"),
        ({"updatedAt": 1730111340000}, "'updatedAt' is a JSON number"),
        ({"createdAt": "2024-10-28T10:29:00"}, "'createdAt' is not an ISO-8601 timestamp with timezone"),
        ({"startedAt": "soon"}, "'startedAt' is not an ISO-8601 timestamp"),
        ({"type": 3}, "'type' is a JSON number"),
        ({"targetId": {"id": "x"}}, "'targetId' is a JSON object"),
        ({"metadata": ["not", "an", "object"]}, "'metadata' is a JSON array"),
        ({"error": {"message": "boom"}}, "'error' is a JSON object"),
        ({"progress": 101}, "outside 0-100"),
        ({"progress": -1}, "outside 0-100"),
        ({"progress": 65.5}, "expected an integer"),
        ({"progress": "65"}, "'progress' is a JSON string"),
        ({"progress": True}, "'progress' is a JSON boolean"),
    ],
)
def test_bad_records_are_rejected_with_a_reason(overrides: dict[str, Any], reason_part: str) -> None:
    record = job_record(**overrides)
    reject = as_reject(record)
    assert reason_part in reject.reason
    assert reject.raw is record


def test_reject_keeps_the_id_when_it_is_readable() -> None:
    assert as_reject(job_record("cm4bad", progress=500)).job_id == "cm4bad"
    assert as_reject(job_record("x", id=42)).job_id is None


def test_integral_float_progress_is_accepted() -> None:
    # JSON has one number type: 65.0 is the number 65.
    assert as_job(job_record(progress=65.0)).progress == 65


@pytest.mark.parametrize("record", [None, 3, "job", ["id", "x"], True])
def test_non_object_records_are_rejected(record: Any) -> None:
    reject = as_reject(record)
    assert "not an object" in reject.reason and reject.job_id is None


def test_duplicate_ids_keep_the_first_and_reject_the_rest() -> None:
    first = job_record("dup", status="DONE")
    second = job_record("dup", status="ERROR")
    other = job_record("other")
    jobs, rejects = parse_records([first, other, second])
    assert [job.id for job in jobs] == ["dup", "other"]
    assert jobs[0].status == "DONE"
    assert rejects == (RejectedRecord(raw=second, reason=DUPLICATE_REASON, job_id="dup"),)


def test_an_invalid_record_does_not_claim_its_id() -> None:
    broken = job_record("same", createdAt="not a date")
    valid = job_record("same")
    jobs, rejects = parse_records([broken, valid])
    assert [job.id for job in jobs] == ["same"]
    assert len(rejects) == 1 and "createdAt" in rejects[0].reason


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "body is a JSON array"),
        ("ok", "body is a JSON string"),
        ({"success": True}, "no 'data'"),
        ({"success": True, "data": {"id": "x"}}, "'data' is a JSON object"),
        ({"success": False, "error": "quota exceeded"}, "success=false: quota exceeded"),
    ],
)
def test_envelope_errors(payload: Any, message: str) -> None:
    with pytest.raises(EnvelopeError, match=message):
        extract_records(payload)


def test_envelope_without_success_flag_is_tolerated() -> None:
    assert extract_records({"data": [1, 2]}) == [1, 2]


# -- properties --------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=8,
)
# Field values: mostly plausible, sometimes any JSON (small, to keep generation fast).
small_json: st.SearchStrategy[Any] = (
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8) | st.just([])
)
fixed_offsets = st.integers(-14 * 60, 14 * 60).map(lambda minutes: timezone(timedelta(minutes=minutes)))
timestamp_texts = st.one_of(
    st.text(max_size=40),
    st.datetimes(timezones=fixed_offsets).map(lambda dt: dt.isoformat()),
    st.datetimes().map(lambda dt: dt.isoformat()),
)
field_overrides = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.sampled_from(["a", "b", "c", ""]), small_json),
        "userId": small_json,
        "targetId": small_json,
        "type": st.one_of(st.sampled_from(["EXTRACTION", "SYNC", "NEW_KIND"]), small_json),
        "status": st.one_of(st.sampled_from(["DONE", "ERROR", "PAUSED"]), small_json),
        "progress": st.one_of(st.integers(-5, 105), st.floats(-1, 101), small_json),
        "metadata": st.one_of(st.dictionaries(st.text(max_size=5), small_json, max_size=3), small_json),
        "error": small_json,
        "startedAt": st.one_of(timestamp_texts, small_json),
        "completedAt": st.one_of(timestamp_texts, small_json),
        "createdAt": st.one_of(timestamp_texts, small_json),
        "updatedAt": st.one_of(timestamp_texts, small_json),
        "surprise": small_json,
    },
)
droppable = st.sets(st.sampled_from(sorted(job_record())), max_size=3)


def _mutated(job_id: str, overrides: dict[str, Any], dropped: set[str]) -> dict[str, Any]:
    record = job_record(job_id, **overrides)
    for key in dropped:
        record.pop(key, None)
    return record


# Valid records with a few fields changed or dropped (so both outcomes occur), plus any JSON.
mutated_records = st.builds(
    _mutated,
    st.sampled_from(["a", "b", "c", "d"]),
    st.one_of(st.just({}), field_overrides),
    st.one_of(st.just(set()), droppable),
)
flat_json = st.one_of(
    small_json, st.lists(small_json, max_size=3), st.dictionaries(st.text(max_size=5), small_json, max_size=3)
)
records_strategy = st.lists(st.one_of(mutated_records, mutated_records, flat_json), max_size=8)


@settings(max_examples=120, deadline=None)
@given(records_strategy)
def test_every_record_becomes_exactly_one_job_or_reject(records: list[Any]) -> None:
    jobs, rejects = parse_records(records)
    assert len(jobs) + len(rejects) == len(records)
    assert len({job.id for job in jobs}) == len(jobs)
    for job in jobs:
        assert job.created_at.tzinfo is not None and job.created_at.utcoffset() == timedelta(0)
        assert job.progress is None or 0 <= job.progress <= 100
        assert any(job.raw is record for record in records)
    for reject in rejects:
        assert reject.reason
        assert any(reject.raw is record for record in records)


@settings(max_examples=60, deadline=None)
@given(json_values)
def test_envelope_extraction_never_fails_unexpectedly(payload: Any) -> None:
    try:
        records = extract_records(payload)
    except EnvelopeError:
        return
    jobs, rejects = parse_records(records)
    assert len(jobs) + len(rejects) == len(records)


utc_millis = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda dt: dt.replace(microsecond=dt.microsecond // 1000 * 1000))


@settings(max_examples=150, deadline=None)
@given(utc_millis, st.integers(-14 * 60, 14 * 60))
def test_timestamps_round_trip_to_the_millisecond(instant: datetime, offset_minutes: int) -> None:
    zulu = instant.strftime("%Y-%m-%dT%H:%M:%S.") + f"{instant.microsecond // 1000:03d}Z"
    assert parse_timestamp(zulu) == instant
    shifted = instant.astimezone(timezone(timedelta(minutes=offset_minutes)))
    assert parse_timestamp(shifted.isoformat(timespec="milliseconds")) == instant
    job = as_job(job_record(createdAt=zulu, updatedAt=zulu))
    assert job.created_at == instant
    # Back to the API's wire format, exactly.
    assert job.created_at.isoformat(timespec="milliseconds").replace("+00:00", "Z") == zulu
