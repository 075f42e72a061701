"""Shared helpers of the analytics tests: archives of random jobs, comparisons.

The tables are made by the archive's own migrations (`jobs_pipeline.archive.migrations.migrate`),
constraints included, so the analytics tests always run against the real schema. The tests at the
bottom check the helpers themselves.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import polars as pl
from hypothesis import strategies as st

from jobs_pipeline.archive.migrations import migrate, schema_version
from jobs_pipeline.archive.schema import SCHEMA_VERSION, TABLES

JOB_TYPES = ("EXTRACTION", "EMBEDDING", "SYNC", "IMPORT", "TRANSCRIPTION", "GENERATION")
BASE = datetime(2024, 10, 7, tzinfo=UTC)  # a Monday


def create_archive(conn: duckdb.DuckDBPyConnection) -> None:
    """The archive's tables, by its own migrations (a no-op on an archive already up to date)."""
    migrate(conn)


@dataclass
class Archive:
    """Rows for the four archive tables, built in Python and inserted in one go."""

    jobs: list[dict[str, Any]] = field(default_factory=list)
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)

    def insert(self, conn: duckdb.DuckDBPyConnection) -> None:
        create_archive(conn)
        for table, rows in (
            ("jobs", self.jobs),
            ("job_snapshots", self.snapshots),
            ("job_status_changes", self.changes),
        ):
            if not rows:
                continue
            columns = list(rows[0])
            frame = pl.DataFrame(rows, schema_overrides=_overrides(columns), infer_schema_length=None)
            conn.register("_rows", frame)
            names = ", ".join(columns)
            conn.sql(f"INSERT INTO hot.{table} ({names}) SELECT {names} FROM _rows")
            conn.unregister("_rows")


def insert_sync_run(
    conn: duckdb.DuckDBPyConnection,
    tenant: str,
    sync_id: str,
    observed_at: datetime,
    error: str | None = None,
) -> None:
    """A complete sync_runs row (every NOT NULL column filled) for a sync that saw nothing new."""
    conn.execute(
        """INSERT INTO hot.sync_runs (tenant, sync_id, started_at, finished_at, observed_at, requests, pages,
               jobs_seen, jobs_new, jobs_changed, jobs_vanished, coverage_complete, gaps, status, error)
           VALUES ($tenant, $sync_id, $at, $at, $at, 1, 1, 0, 0, 0, 0, true, '[]', 'ok', $error)""",
        {"tenant": tenant, "sync_id": sync_id, "at": observed_at, "error": error},
    )


def _overrides(columns: list[str]) -> dict[str, Any]:
    types: dict[str, Any] = {}
    for name in columns:
        if name.endswith("_at"):
            types[name] = pl.Datetime("us", "UTC")
        elif name in ("progress",):
            types[name] = pl.Int32
        elif name in ("status_inferred",):
            types[name] = pl.Boolean
        else:
            types[name] = pl.String
    return types


def job_row(
    job_id: str,
    job_type: str,
    status: str,
    created_at: datetime,
    *,
    tenant: str = "acme",
    started_at: datetime | None = None,
    completed_at: datetime | None = None,
    vanished_at: datetime | None = None,
    last_seen_at: datetime | None = None,
    progress: int | None = None,
    target_id: str | None = None,
    metadata: dict[str, Any] | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    stamps = [t for t in (created_at, started_at, completed_at) if t is not None]
    updated = max(stamps)
    return {
        "tenant": tenant,
        "job_id": job_id,
        "user_id": "u1",
        "target_id": target_id,
        "job_type": job_type,
        "status": status,
        "status_inferred": status == "KILLED",
        "progress": progress,
        "error": error if error is not None else ("boom" if status == "ERROR" else None),
        "metadata": json.dumps(metadata) if metadata is not None else None,
        "created_at": created_at,
        "started_at": started_at,
        "completed_at": completed_at,
        "updated_at": updated,
        "first_seen_at": created_at,
        "last_seen_at": last_seen_at if last_seen_at is not None else updated,
        "vanished_at": vanished_at,
        "last_sync_id": "s1",
    }


@dataclass(frozen=True)
class JobDraw:
    """One random job, as offsets (ms) from the archive's start; the fate decides which stamps exist."""

    created_ms: int
    wait_ms: int
    run_ms: int
    fate: str
    job_type: str
    progress: int | None
    size: int | None
    target: int
    tenant: str


def job_draws(
    max_jobs: int = 40, span_ms: int = 3 * 86_400_000, tenants: tuple[str, ...] = ("acme",)
) -> st.SearchStrategy[list[JobDraw]]:
    draw = st.builds(
        JobDraw,
        # Hypothesis favours the ends of a range: mix in a range of young jobs (still running at as_of).
        created_ms=st.one_of(st.integers(0, span_ms), st.integers(span_ms - 20 * 3_600_000, span_ms)),
        # Ties happen on purpose (small ranges): equal run times, simultaneous starts and ends.
        wait_ms=st.one_of(st.integers(0, 5_000), st.integers(0, 3_600_000)),
        run_ms=st.one_of(st.sampled_from([0, 1_000, 60_000]), st.integers(0, 4 * 3_600_000)),
        fate=st.sampled_from(["DONE", "DONE", "DONE", "ERROR", "KILLED", "RUN", "PENDING", "ERROR_NOSTAMP"]),
        job_type=st.sampled_from(JOB_TYPES[:4]),
        progress=st.one_of(st.none(), st.integers(0, 100)),
        size=st.one_of(st.none(), st.integers(-1, 200)),
        target=st.integers(0, 6),
        tenant=st.sampled_from(tenants),
    )
    return st.lists(draw, max_size=max_jobs)


def build_archive(draws: list[JobDraw], as_of: datetime, base: datetime = BASE) -> Archive:
    """Turn draws into a consistent archive observed up to as_of (runs never end after as_of)."""
    archive = Archive()
    for i, d in enumerate(draws):
        created = base + timedelta(milliseconds=d.created_ms)
        if created >= as_of:
            continue
        started = created + timedelta(milliseconds=d.wait_ms)
        ended = started + timedelta(milliseconds=d.run_ms)
        meta: dict[str, Any] | None = None
        if d.size is not None:
            meta = (
                {"pageCount": d.size} if d.job_type == "EXTRACTION" else {"totalChunks": d.size, "model": "m"}
            )
        common: dict[str, Any] = {
            "tenant": d.tenant,
            "target_id": f"t{d.target}",
            "metadata": meta,
            "progress": d.progress,
        }
        fate = d.fate
        if fate in ("DONE", "ERROR", "ERROR_NOSTAMP", "KILLED") and ended > as_of:
            fate = "RUN"
        if fate == "RUN" and started >= as_of:
            fate = "PENDING"
        job_id = f"j{i:04d}"
        if fate == "DONE":
            archive.jobs.append(
                job_row(job_id, d.job_type, "DONE", created, started_at=started, completed_at=ended, **common)
            )
            add_snapshots(archive, job_id, d, started, ended)
        elif fate == "ERROR":
            archive.jobs.append(
                job_row(
                    job_id, d.job_type, "ERROR", created, started_at=started, completed_at=ended, **common
                )
            )
        elif fate == "ERROR_NOSTAMP":
            row = job_row(job_id, d.job_type, "ERROR", created, started_at=started, **common)
            row["updated_at"] = ended
            row["last_seen_at"] = ended
            archive.jobs.append(row)
        elif fate == "KILLED":
            archive.jobs.append(
                job_row(
                    job_id,
                    d.job_type,
                    "KILLED",
                    created,
                    started_at=started,
                    vanished_at=ended,
                    last_seen_at=started,
                    **common,
                )
            )
        elif fate == "RUN":
            # Observable until as_of when young enough (last sighting: the sync before as_of);
            # otherwise lost from view at its last sighting.
            seen = min(as_of - timedelta(seconds=90), created + timedelta(hours=23))
            seen = max(seen, started)
            archive.jobs.append(
                job_row(
                    job_id,
                    d.job_type,
                    "IN_PROGRESS",
                    created,
                    started_at=started,
                    last_seen_at=seen,
                    **common,
                )
            )
        else:
            seen = min(as_of, created + timedelta(hours=23))
            archive.jobs.append(job_row(job_id, d.job_type, "PENDING", created, last_seen_at=seen, **common))
    return archive


def add_snapshots(archive: Archive, job_id: str, d: JobDraw, started: datetime, ended: datetime) -> None:
    """Two IN_PROGRESS sightings with linear progress, and the final DONE one."""
    run = ended - started
    for fraction in (0.25, 0.6):
        observed = started + run * fraction
        archive.snapshots.append(
            {
                "tenant": d.tenant,
                "sync_id": "s",
                "job_id": job_id,
                "observed_at": observed,
                "status": "IN_PROGRESS",
                "progress": None if d.progress is None else int(100 * fraction),
                "updated_at": observed,
                "error": None,
                "metadata": None,
                "payload": json.dumps({"id": job_id, "status": "IN_PROGRESS"}),
                "source": "poll",
            }
        )
    archive.snapshots.append(
        {
            "tenant": d.tenant,
            "sync_id": "s",
            "job_id": job_id,
            "observed_at": ended,
            "status": "DONE",
            "progress": 100,
            "updated_at": ended,
            "error": None,
            "metadata": None,
            "payload": json.dumps({"id": job_id, "status": "DONE"}),
            "source": "poll",
        }
    )


def random_archive(
    seed: int, n_jobs: int, days: int, as_of: datetime, tenants: tuple[str, ...] = ("acme",)
) -> Archive:
    """A larger random archive (plain `random`, for tests that need volume rather than shrinking)."""
    rng = random.Random(seed)
    span = days * 86_400_000
    draws = [
        JobDraw(
            created_ms=rng.randrange(span),
            wait_ms=int(rng.expovariate(1 / 20_000)),
            run_ms=int(rng.expovariate(1 / 300_000)) if rng.random() > 0.02 else rng.randrange(3 * 3_600_000),
            fate=rng.choices(
                ["DONE", "ERROR", "KILLED", "RUN", "PENDING", "ERROR_NOSTAMP"], [80, 8, 3, 5, 2, 2]
            )[0],
            job_type=rng.choice(JOB_TYPES),
            progress=None if rng.random() < 0.2 else rng.randrange(101),
            size=None if rng.random() < 0.3 else rng.randrange(1, 300),
            target=rng.randrange(200),
            tenant=rng.choice(tenants),
        )
        for _ in range(n_jobs)
    ]
    return build_archive(draws, as_of)


def naive(frame: pl.DataFrame) -> pl.DataFrame:
    """Timestamps as naive UTC, for comparing Polars output with SQL output."""
    exprs = []
    for name, dtype in frame.schema.items():
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
            exprs.append(
                pl.col(name).dt.convert_time_zone("UTC").dt.replace_time_zone(None).cast(pl.Datetime("us"))
            )
    return frame.with_columns(exprs) if exprs else frame


def assert_frames_close(
    actual: pl.DataFrame, expected: pl.DataFrame, keys: list[str], *, rel: float = 1e-9
) -> None:
    """Same keys, same columns (those of `expected`), floats within rel/abs tolerance."""
    actual = naive(actual).select(expected.columns).sort(keys)
    expected = naive(expected).sort(keys)
    assert actual.height == expected.height, (
        f"row counts differ: {actual.height} vs {expected.height}\n"
        f"only in actual: {actual.select(keys).join(expected.select(keys), on=keys, how='anti')}\n"
        f"only in expected: {expected.select(keys).join(actual.select(keys), on=keys, how='anti')}"
    )
    assert actual.select(keys).equals(expected.select(keys)), "bucket keys differ"
    for name in expected.columns:
        if name in keys:
            continue
        left, right = actual[name], expected[name]
        assert left.null_count() == right.null_count() and (left.is_null() == right.is_null()).all(), (
            f"{name}: nulls differ\n{actual.select(*keys, name)}\n{expected.select(*keys, name)}"
        )
        if left.dtype.is_float() or right.dtype.is_float():
            a = left.cast(pl.Float64).drop_nulls()
            b = right.cast(pl.Float64).drop_nulls()
            diff = (a - b).abs()
            bound = (b.abs() * rel) + 1e-9
            bad = diff > bound
            assert not bad.any(), (
                f"{name}: {a.filter(bad).head(5).to_list()} vs {b.filter(bad).head(5).to_list()}"
            )
        else:
            assert left.cast(right.dtype).equals(right), f"{name} differs"


def fresh_connection(archive: Archive) -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect()
    conn.sql("SET TimeZone = 'UTC'")
    archive.insert(conn)
    return conn


# ------------------------------------------------------------------------------------------------
# Tests of the helpers themselves


def test_fixture_archives_have_the_real_schema() -> None:
    conn = duckdb.connect()
    create_archive(conn)
    create_archive(conn)  # again, as Archive.insert does on an existing archive
    assert schema_version(conn) == SCHEMA_VERSION
    columns = conn.sql(
        "SELECT table_name, list(column_name ORDER BY column_index) FROM duckdb_columns() "
        "WHERE NOT internal AND schema_name = 'main' GROUP BY table_name"
    ).fetchall()
    assert {name: tuple(cols) for name, cols in columns} == TABLES
    # Every column the helpers fill exists, and their rows satisfy the archive's constraints.
    archive = random_archive(seed=5, n_jobs=300, days=2, as_of=BASE + timedelta(days=2))
    assert archive.jobs and archive.snapshots
    archive.insert(conn)
    assert set(archive.jobs[0]) == set(TABLES["jobs"])
    assert set(archive.snapshots[0]) == set(TABLES["job_snapshots"])


def test_random_archives_keep_valid_timestamp_orders() -> None:
    as_of = BASE + timedelta(days=10)
    archive = random_archive(seed=3, n_jobs=2_000, days=10, as_of=as_of)
    conn = fresh_connection(archive)
    bad = conn.sql(
        """SELECT count(*) FROM jobs WHERE started_at < created_at OR completed_at < started_at
           OR completed_at > $as_of OR vanished_at < started_at OR created_at >= $as_of
           OR (status = 'DONE' AND completed_at IS NULL) OR (status = 'KILLED' AND vanished_at IS NULL)""",
        params={"as_of": as_of},
    ).fetchall()[0][0]
    assert bad == 0
    statuses = {r[0] for r in conn.sql("SELECT DISTINCT status FROM jobs").fetchall()}
    assert statuses == {"DONE", "ERROR", "KILLED", "IN_PROGRESS", "PENDING"}
