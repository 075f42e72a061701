"""Builders shared by the archive tests (jobs, results, archives, table dumps), and their own checks."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from jobs_pipeline.api.models import Job, RejectedRecord
from jobs_pipeline.archive.frames import latest_per_job, observations_table
from jobs_pipeline.archive.jsontext import api_shape, canonical_json, payload_json, reject_payload_text
from jobs_pipeline.archive.migrations import migrate
from jobs_pipeline.archive.schema import TABLES
from jobs_pipeline.archive.session import configure_session
from jobs_pipeline.capture.types import CaptureResult, Gap, Observation, Vanished

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def at(*, minutes: float = 0, seconds: float = 0, ms: int = 0) -> datetime:
    return T0 + timedelta(minutes=minutes, seconds=seconds, milliseconds=ms)


def make_job(
    job_id: str,
    status: str,
    *,
    created: datetime = T0,
    updated: datetime | None = None,
    started: datetime | None = None,
    completed: datetime | None = None,
    progress: int | None = None,
    metadata: dict[str, Any] | None = None,
    error: str | None = None,
    job_type: str = "EXTRACTION",
    target_id: str | None = "doc-1",
    user_id: str | None = "user-1",
    raw: dict[str, Any] | None = None,
) -> Job:
    if updated is None:
        updated = max(t for t in (created, started, completed) if t is not None)
    job = Job(
        id=job_id,
        user_id=user_id,
        target_id=target_id,
        type=job_type,
        status=status,
        created_at=created,
        updated_at=updated,
        progress=progress,
        metadata=metadata,
        error=error,
        started_at=started,
        completed_at=completed,
    )
    # Like the API client: the raw payload is what came over the wire.
    object.__setattr__(job, "raw", raw if raw is not None else api_shape(job))
    return job


def make_result(
    sync_id: str,
    observed_at: datetime,
    observations: Iterable[Job | Observation] = (),
    *,
    tenant: str = "acme",
    vanished: Sequence[Vanished] = (),
    gaps: Sequence[Gap] = (),
    rejects: Sequence[RejectedRecord] = (),
    requests: int = 1,
    pages: int = 1,
    rate_limited: int = 0,
    plan_notes: dict[str, object] | None = None,
) -> CaptureResult:
    return CaptureResult(
        tenant=tenant,
        sync_id=sync_id,
        started_at=observed_at,
        finished_at=observed_at + timedelta(seconds=3),
        observed_at=observed_at,
        requests=requests,
        pages=pages,
        observations=[
            item if isinstance(item, Observation) else Observation(job=item, observed_at=observed_at)
            for item in observations
        ],
        vanished=list(vanished),
        gaps=list(gaps),
        rejects=list(rejects),
        rate_limited=rate_limited,
        plan_notes=dict(plan_notes or {}),
    )


def memory_archive() -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect(":memory:")
    configure_session(conn)
    migrate(conn)
    return conn


def rows(
    conn: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None = None
) -> list[dict[str, Any]]:
    cursor = conn.execute(sql, params or [])
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def dump_tables(conn: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[Any, ...]]]:
    """Every archive table's full content in a stable order: equal dumps mean equal archives."""
    return {
        table: conn.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
        for table in TABLES
        if table != "schema_version"
    }


def changes_of(conn: duckdb.DuckDBPyConnection, job_id: str, tenant: str = "acme") -> list[dict[str, Any]]:
    return rows(
        conn,
        """
        SELECT c.* FROM job_status_changes c JOIN sync_runs s USING (tenant, sync_id)
        WHERE c.tenant = ? AND c.job_id = ? ORDER BY s.observed_at, c.step
        """,
        [tenant, job_id],
    )


def job_row(conn: duckdb.DuckDBPyConnection, job_id: str, tenant: str = "acme") -> dict[str, Any]:
    (row,) = rows(conn, "SELECT * FROM jobs WHERE tenant = ? AND job_id = ?", [tenant, job_id])
    return row


def count(conn: duckdb.DuckDBPyConnection, table: str, tenant: str | None = None) -> int:
    where, params = ("WHERE tenant = ?", [tenant]) if tenant else ("", [])
    return int(conn.execute(f"SELECT count(*) FROM {table} {where}", params).fetchall()[0][0])


# ---- checks of the builders' building blocks (jsontext, frames) ---------------------------------


def test_canonical_json_ignores_key_order() -> None:
    assert canonical_json({"b": 1, "a": {"d": 2, "c": "é"}}) == canonical_json(
        {"a": {"c": "é", "d": 2}, "b": 1}
    )
    assert canonical_json({"b": 1, "a": 2}) == '{"a":2,"b":1}'


def test_payload_keeps_raw_order_and_unknown_fields() -> None:
    raw = {"id": "j1", "zeta": [1, 2], "status": "PENDING", "newField": {"x": None}}
    job = make_job("j1", "PENDING", raw=raw)
    assert json.loads(payload_json(job)) == raw
    assert payload_json(job).startswith('{"id":"j1","zeta"')


def test_payload_rebuilt_in_api_shape_when_raw_is_empty() -> None:
    job = make_job("j1", "DONE", started=at(seconds=1), completed=at(seconds=2, ms=5), progress=100)
    object.__setattr__(job, "raw", {})
    shaped = json.loads(payload_json(job))
    assert shaped["completedAt"] == "2025-03-01T12:00:02.005Z"
    assert shaped["type"] == "EXTRACTION" and shaped["progress"] == 100


def test_reject_payload_is_json_when_possible_else_raw_text() -> None:
    assert reject_payload_text({"id": 3}) == '{"id":3}'
    assert reject_payload_text("not json {") == "not json {"
    assert reject_payload_text(b"\xffraw") == "\ufffdraw"
    assert reject_payload_text({"x": float("nan")}).startswith("{")  # repr, not invalid JSON


def test_latest_per_job_orders_by_updated_then_rank_then_observed() -> None:
    pending = make_job("j1", "PENDING", updated=at(seconds=5))
    running = make_job("j1", "IN_PROGRESS", updated=at(seconds=5))  # same updatedAt, later in lifecycle
    older = make_job("j1", "DONE", updated=at(seconds=1))
    picked = latest_per_job(
        [
            Observation(running, at(minutes=1)),
            Observation(pending, at(minutes=2)),
            Observation(older, at(minutes=3)),
        ]
    )
    assert [o.job.status for o in picked] == ["IN_PROGRESS"]
    same = make_job("j2", "PENDING")
    picked = latest_per_job([Observation(same, at(minutes=2)), Observation(same, at(minutes=1))])
    assert [o.observed_at for o in picked] == [at(minutes=2)]


def test_observations_table_is_millisecond_exact_utc() -> None:
    job = make_job("j1", "PENDING", created=at(ms=123), metadata={"b": 2, "a": 1})
    table = observations_table([Observation(job, at(seconds=1, ms=999))])
    row = table.to_pylist()[0]
    assert row["created_at"] == at(ms=123)
    assert row["observed_at"] == at(seconds=1, ms=999)
    assert row["metadata"] == '{"a":1,"b":2}'
