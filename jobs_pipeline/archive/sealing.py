"""Sealing: move the rows that can no longer change from the hot store into immutable day files.

Runs inside the sync's transaction, right after its merge (`merge.apply_capture`), for that sync's
tenant, with `as_of` = the sync's server time (bounded by this machine's clock, so that a server
whose clock runs ahead cannot seal days that are still open). For each family (`layout.Family`)
and each day between what is already sealed and `layout.seal_through(family, as_of)`, oldest
first and at most `MAX_DAYS_PER_SYNC` days per sync:

1. each table's rows of that day are written with `COPY ... TO` into a temp file in the day's
   folder (a name the views' glob does not match), fsynced, and renamed to `data.parquet`;
2. the rows are deleted from the hot table, the file is recorded in `hot.sealed_partitions` and
   the family's `hot.sealed_through` moves to that day;
3. the views are regenerated with the new horizon.

Everything but the file itself is transactional. If the sync fails or is killed anywhere before
its COMMIT, the store rolls back: the rows are still hot, the horizon is where it was, and the
file, already on disk, lies beyond every committed horizon (the views ignore it); the next sync
writes it again. Once committed, a day file is never rewritten.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import duckdb

from jobs_pipeline.archive.durable import fsync_directory, fsync_file
from jobs_pipeline.archive.layout import (
    MAX_DAYS_PER_SYNC,
    SEALED_FILE,
    SEALED_TABLES,
    Family,
    SealedTable,
    day_start,
    hot,
    seal_through,
)
from jobs_pipeline.archive.manifest import (
    announced_sealed_root,
    record_partition,
    record_sealed_through,
    sealed_root,
    sealed_through,
    set_sealed_root,
)
from jobs_pipeline.archive.sqltext import sql_literal
from jobs_pipeline.archive.views import PARTITION_KEYS, hot_columns, refresh_views

_SEAL_IDS = "_jobs_pipeline_seal_ids"
_BEGINNING = datetime(1900, 1, 1, tzinfo=UTC)  # before any day an archive can hold


@dataclass(slots=True)
class SealReport:
    """What one sync sealed: day files written and rows moved out of the hot store."""

    days: dict[str, list[date]] = field(default_factory=dict)  # family -> days sealed
    written: list[Path] = field(default_factory=list)  # day files written (committed or not yet)
    files: int = 0
    rows: int = 0
    bytes: int = 0

    @property
    def sealed_anything(self) -> bool:
        return any(self.days.values())


def seal_ready_days(
    conn: duckdb.DuckDBPyConnection,
    tenant: str,
    sync_id: str,
    observed_at: datetime,
    *,
    now: datetime | None = None,
    written: list[Path] | None = None,
) -> SealReport:
    """Seal every day of `tenant` that is immutable at `observed_at`; no-op when the archive has no sealed folder.

    `written` receives each day file as soon as it exists, so that a caller whose transaction then
    fails can remove them.
    """
    report = SealReport(written=written if written is not None else [])
    root = announced_sealed_root(conn)
    if root is None:  # a connection not opened by `open_writer` (tests, in-memory): everything stays hot
        return report
    moved = False
    if sealed_root(conn) != root:  # first sync of this layout, or the archive was moved or copied
        set_sealed_root(conn, root)
        moved = True
    as_of = min(observed_at, now or datetime.now(UTC))
    for family in Family:
        target = seal_through(family, as_of)
        current = sealed_through(conn, tenant, family)
        if current is not None and current >= target:
            continue
        days = _days_with_rows(conn, tenant, family, after=current, through=target)
        for day in days:
            _seal_day(conn, root, tenant, family, day, sync_id, report)
        # Days without rows need no file, but the horizon still moves over them: nothing may be
        # written there any more. When the per-sync bound cut the list short, stop at its last day.
        reached = days[-1] if len(days) == MAX_DAYS_PER_SYNC else target
        record_sealed_through(conn, tenant, family, reached)
        report.days[family.value] = days
        moved = True
    if moved:
        refresh_views(conn)
    return report


# The rows that give a family's days: the created day of jobs (every row of the other job tables
# belongs to a job in hot.jobs), the observed day of the sync log.
_DAY_SOURCES: dict[Family, tuple[tuple[str, str], ...]] = {
    Family.JOB: (("jobs", "created_at"),),
    Family.LOG: (
        ("sync_runs", "observed_at"),
        ("rejected_records", "observed_at"),
        ("webhook_events", "observed_at"),
    ),
}


def _days_with_rows(
    conn: duckdb.DuckDBPyConnection, tenant: str, family: Family, *, after: date | None, through: date
) -> list[date]:
    lower = day_start(after + timedelta(days=1)) if after is not None else _BEGINNING
    selects = " UNION ".join(
        f"SELECT DISTINCT ({column} AT TIME ZONE 'UTC')::DATE AS day FROM {hot(table)} "
        f"WHERE tenant = $tenant AND {column} >= $lower AND {column} < $upper"
        for table, column in _DAY_SOURCES[family]
    )
    rows = conn.execute(
        f"SELECT day FROM ({selects}) ORDER BY day LIMIT {MAX_DAYS_PER_SYNC}",
        {"tenant": tenant, "lower": lower, "upper": day_start(through + timedelta(days=1))},
    ).fetchall()
    return [day for (day,) in rows]


def _seal_day(
    conn: duckdb.DuckDBPyConnection,
    root: Path,
    tenant: str,
    family: Family,
    day: date,
    sync_id: str,
    report: SealReport,
) -> None:
    start, end = day_start(day), day_start(day + timedelta(days=1))
    if family is Family.JOB:
        conn.execute(
            f"CREATE OR REPLACE TEMP TABLE {_SEAL_IDS} AS SELECT job_id FROM {hot('jobs')} "
            "WHERE tenant = $tenant AND created_at >= $start AND created_at < $end",
            {"tenant": tenant, "start": start, "end": end},
        )
    for table in SEALED_TABLES:
        if table.family is family:
            _seal_table_day(conn, root, table, tenant, day, (start, end), sync_id, report)
    if family is Family.JOB:
        conn.execute(f"DROP TABLE {_SEAL_IDS}")


def _seal_table_day(
    conn: duckdb.DuckDBPyConnection,
    root: Path,
    table: SealedTable,
    tenant: str,
    day: date,
    bounds: tuple[datetime, datetime],
    sync_id: str,
    report: SealReport,
) -> None:
    columns = [name for name, _ in hot_columns(conn, table.name) if name not in PARTITION_KEYS]
    where = _day_rows(table, tenant, bounds)
    folder = root / table.name / f"tenant={_path_value(tenant)}" / f"day={day.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(f".{SEALED_FILE}.*.tmp"):  # from a killed sync: we hold the writer lock
        stale.unlink(missing_ok=True)
    final = folder / SEALED_FILE
    temp = folder / f".{SEALED_FILE}.{os.getpid()}.tmp"
    report.written.append(temp)  # listed before it exists: a COPY that fails half-way leaves none
    names = ", ".join(f'"{name}"' for name in columns)
    select = f"SELECT {names} FROM {hot(table.name)} AS t WHERE {where} ORDER BY {table.order_by}"
    ((rows,),) = conn.execute(
        f"COPY ({select}) TO {sql_literal(str(temp))} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)"
    ).fetchall()
    if rows == 0:
        temp.unlink(missing_ok=True)
        return
    fsync_file(temp)
    report.written.append(final)
    os.replace(temp, final)
    fsync_directory(folder)
    conn.execute(f"DELETE FROM {hot(table.name)} AS t WHERE {where}")
    size = final.stat().st_size
    record_partition(
        conn,
        tenant=tenant,
        table=table.name,
        day=day,
        path=str(final.relative_to(root)),
        rows=int(rows),
        size=size,
        columns=columns,
        sync_id=sync_id,
    )
    report.files += 1
    report.rows += int(rows)
    report.bytes += size


def _day_rows(table: SealedTable, tenant: str, bounds: tuple[datetime, datetime]) -> str:
    """SQL predicate (on alias t) selecting the table's rows of one tenant and day; literals inlined
    because COPY takes no parameters."""
    tenant_match = f"t.tenant = {sql_literal(tenant)}"
    if table.name == "jobs":
        start, end = (f"TIMESTAMPTZ '{b.isoformat()}'" for b in bounds)
        return f"{tenant_match} AND t.created_at >= {start} AND t.created_at < {end}"
    if table.family is Family.JOB:
        return f"{tenant_match} AND t.job_id IN (SELECT job_id FROM {_SEAL_IDS})"
    start, end = (f"TIMESTAMPTZ '{b.isoformat()}'" for b in bounds)
    return f"{tenant_match} AND t.observed_at >= {start} AND t.observed_at < {end}"


def _path_value(tenant: str) -> str:
    # Hive folder values are percent-decoded by DuckDB, Spark, Trino and pyarrow alike: any tenant
    # name (a slash, a space, an '=') gets a folder of its own and reads back unchanged.
    return quote(tenant, safe="")
