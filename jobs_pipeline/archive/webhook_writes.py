"""Every SQL statement the webhook merge runs against the archive tables, in one place.

Why one place: the storage layout is moving the writable tables into their own schema (the names
analysts use become views); re-targeting the webhook merge is then a change of `TableNames` only.
Reads go through the same names, so they follow too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import polars as pl

from jobs_pipeline.archive.session import query_frame


@dataclass(frozen=True, slots=True)
class TableNames:
    # The hot tables: what can still change, and where a sync writes (layout.py). Reads too: the
    # merge only ever looks at jobs younger than the sealed horizon (webhook_merge.py).
    jobs: str = "hot.jobs"
    snapshots: str = "hot.job_snapshots"
    changes: str = "hot.job_status_changes"
    rejects: str = "hot.rejected_records"
    sync_runs: str = "hot.sync_runs"
    events: str = "hot.webhook_events"


WRITABLE = TableNames()


class WebhookWrites:
    """Reads and writes of one webhook merge, on the sync's connection and inside its transaction."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, tables: TableNames = WRITABLE) -> None:
        self.conn = conn
        self.t = tables
        self._views: list[str] = []

    def _register(self, name: str, frame: pl.DataFrame) -> str:
        view = f"_jobs_pipeline_webhook_{name}"
        self.conn.register(view, frame.rechunk())
        self._views.append(view)
        return view

    def close(self) -> None:
        for view in self._views:
            with contextlib.suppress(duckdb.Error):
                self.conn.unregister(view)
        self._views.clear()

    # -- reads ----------------------------------------------------------------------------------

    def known_keys(self, tenant: str, keys: pl.DataFrame) -> set[str]:
        view = self._register("keys", keys)
        frame = query_frame(
            self.conn,
            f"SELECT e.event_key FROM {self.t.events} AS e JOIN {view} AS k USING (event_key) "
            "WHERE e.tenant = $tenant",
            {"tenant": tenant},
        )
        return set(frame["event_key"].to_list())

    def archived_jobs(self, tenant: str, job_ids: pl.DataFrame) -> pl.DataFrame:
        view = self._register("job_ids", job_ids)
        return query_frame(
            self.conn,
            f"SELECT j.rowid AS row_id, j.job_id, j.status, j.status_inferred, j.progress, j.error, "
            f"j.metadata::VARCHAR AS metadata, j.started_at, j.completed_at, j.updated_at "
            f"FROM {self.t.jobs} AS j JOIN {view} AS k USING (job_id) WHERE j.tenant = $tenant",
            {"tenant": tenant},
        )

    def archived_changes(self, tenant: str, job_ids: pl.DataFrame, sync_id: str) -> pl.DataFrame:
        view = self._register("change_job_ids", job_ids)
        return query_frame(
            self.conn,
            f"SELECT c.rowid AS row_id, c.job_id, c.to_status, c.changed_at, "
            f"c.sync_id = $sync_id AS this_sync, c.step "
            f"FROM {self.t.changes} AS c JOIN {view} AS k USING (job_id) WHERE c.tenant = $tenant",
            {"tenant": tenant, "sync_id": sync_id},
        )

    # -- writes ---------------------------------------------------------------------------------

    def insert(self, table: str, frame: pl.DataFrame, columns: Sequence[str]) -> None:
        if frame.height == 0:
            return
        view = self._register(f"insert_{table.replace('.', '_')}", frame)
        names = ", ".join(columns)
        self.conn.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {view}")

    def update_jobs(self, frame: pl.DataFrame, columns: Sequence[str]) -> None:
        """UPDATE jobs rows found by rowid (`row_id`) from a frame holding the given columns."""
        if frame.height == 0:
            return
        view = self._register("update_jobs", frame)
        sets = ", ".join(f"{c} = u.{c}" for c in columns)
        self.conn.execute(
            f"UPDATE {self.t.jobs} SET {sets} FROM {view} AS u WHERE {self.t.jobs}.rowid = u.row_id"
        )

    def date_changes(self, frame: pl.DataFrame, source: str) -> None:
        """Give inexact status-change rows (by rowid) the exact instant an event reported."""
        if frame.height == 0:
            return
        view = self._register("date_changes", frame)
        c = self.t.changes
        self.conn.execute(
            f"UPDATE {c} SET changed_at = u.changed_at, changed_after = u.changed_at, "
            f"changed_before = u.changed_at, source = $source FROM {view} AS u WHERE {c}.rowid = u.row_id",
            {"source": source},
        )

    def count_rejects(self, tenant: str, sync_id: str, rejects: int) -> None:
        if rejects:
            self.conn.execute(
                f"UPDATE {self.t.sync_runs} SET rejects = coalesce(rejects, 0) + $n "
                "WHERE tenant = $tenant AND sync_id = $sync_id",
                {"n": rejects, "tenant": tenant, "sync_id": sync_id},
            )
