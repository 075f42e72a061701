"""`SyncSummary`: what applying one CaptureResult did, for logs, the CLI and Dagster metadata."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from jobs_pipeline.capture.types import Gap


@dataclass(frozen=True, slots=True)
class WebhookSummary:
    drained: int = 0  # records read from the spool (duplicates included)
    duplicates: int = 0  # already drained before, or delivered twice
    applied: int = 0
    created: int = 0
    refined: int = 0
    stale: int = 0
    rejected: int = 0
    snapshots: int = 0
    status_changes: int = 0

    def one_line(self) -> str:
        return (
            f"webhook: {self.drained} drained ({self.duplicates} duplicate), {self.applied} applied, "
            f"{self.created} new jobs, {self.refined} dated exactly, {self.stale} stale, "
            f"{self.rejected} rejected"
        )


@dataclass(frozen=True, slots=True)
class SyncSummary:
    sync_id: str
    tenant: str
    observed_at: datetime  # server clock at the start of the sync
    requests: int
    pages: int
    jobs_seen: int  # distinct job ids observed
    jobs_new: int
    jobs_changed: int  # already-known jobs that got a new snapshot
    jobs_vanished: int  # jobs_killed + jobs_expired
    jobs_killed: int
    jobs_expired: int
    coverage_complete: bool
    gaps: tuple[Gap, ...]
    rejects: int
    rate_limited: int
    snapshots: int = 0  # job_snapshots rows appended
    status_changes: int = 0  # job_status_changes rows appended
    corrections: int = 0  # inferred KILLED jobs seen again
    stale_ignored: int = 0  # observations older than what the archive already holds
    replayed: bool = False  # this sync_id had already been applied: nothing new was recorded for it
    warnings: tuple[str, ...] = ()
    sealed_files: int = 0  # Parquet day files this sync sealed (layout.py)
    sealed_rows: int = 0  # rows those files moved out of the hot store
    webhook: WebhookSummary | None = None  # events drained from the webhook spool by this sync
    # What the capture planner decided and spent (sync_runs.plan_notes): requests.<purpose> counts.
    plan_notes: Mapping[str, Any] = field(default_factory=dict)

    def one_line(self) -> str:
        when = self.observed_at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        vanished = f"{self.jobs_vanished} vanished"
        if self.jobs_vanished:
            vanished += f": {self.jobs_killed} killed, {self.jobs_expired} expired"
        coverage = "coverage complete"
        if not self.coverage_complete:
            slices = ", ".join(f"{gap.slice} {gap.reason}" for gap in self.gaps)
            coverage = (
                f"coverage INCOMPLETE ({len(self.gaps)} gap{'s' if len(self.gaps) != 1 else ''}: {slices})"
            )
        text = (
            f"sync {self.sync_id} [{self.tenant}] at {when}: {self.jobs_seen:,} jobs seen "
            f"({self.jobs_new:,} new, {self.jobs_changed:,} changed, {vanished}); "
            f"{self.requests} requests, {self.pages} pages, {self.rate_limited} rate-limited, "
            f"{self.rejects} rejected; {coverage}"
        )
        if self.sealed_files:
            text += f"; sealed {self.sealed_files} day file(s), {self.sealed_rows:,} rows"
        if self.webhook is not None:
            text += "; " + self.webhook.one_line()
        if self.replayed:
            text = "(already applied) " + text
        return text
