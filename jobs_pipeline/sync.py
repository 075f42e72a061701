"""One sync, end to end: read what the archive knows, plan and fetch, apply atomically.

The CLI's `sync` and the Dagster capture asset both call `run_sync`; neither adds logic of its
own. This module never imports dagster (the CLI's `sync` must start fast).
"""

from __future__ import annotations

import math
import os
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path

import duckdb

from jobs_pipeline.api.client import JobsClient
from jobs_pipeline.api.models import DEFAULT_RATE_LIMIT_PER_MINUTE
from jobs_pipeline.archive import SyncSummary, apply_capture, open_writer
from jobs_pipeline.archive.state import load_capture_state, load_open_gaps
from jobs_pipeline.archive.webhook_merge import merge_webhook_events
from jobs_pipeline.capture.ledger import JobsSource
from jobs_pipeline.capture.planner import PlannerSettings, capture, default_budget
from jobs_pipeline.webhook.spool import read_spool, spool_dir_for

DEFAULT_BASE_URL = "https://api.devana.ai"
DEFAULT_DB_PATH = "jobs_archive.duckdb"
DEFAULT_TENANT = "default"
DEFAULT_POLL_INTERVAL_SECONDS = 300.0


class ConfigError(Exception):
    """A setting is missing or wrong; nothing was sent and nothing written."""


@dataclass(frozen=True)
class SyncConfig:
    base_url: str
    api_key: str = field(repr=False)  # never printed, never stored
    db_path: Path
    tenant: str = DEFAULT_TENANT
    poll_interval_seconds: float = DEFAULT_POLL_INTERVAL_SECONDS
    rate_limit: int = DEFAULT_RATE_LIMIT_PER_MINUTE
    rate_window_seconds: float = 60.0
    budget: int | None = None  # None: derived from the rate limit and the poll interval
    timeout: float = 10.0
    lock_timeout: float = 120.0
    # Publish the analysts' copy after the sync. A batch of syncs in a row (the demo, a
    # backfill) may publish once at the end instead.
    publish: bool = True
    # Economy, for a key whose rate limit is shared: a running job out of the head page's reach
    # is looked for only once it has gone this long unseen. Saves about a page per such job per
    # sync; its final status then reaches the archive up to this much later, rounded up to the
    # next sync (timestamps stay exact). None: every sync, the freshest archive.
    recheck_running_after_seconds: float | None = None
    # Drain the webhook spool beside the archive (events `webhook serve` stored) in the same
    # transaction. A missing or empty spool costs nothing.
    drain_webhooks: bool = True

    def __post_init__(self) -> None:
        # Checked before anything is created or sent: a typo must not leave files behind.
        for name, value in (
            ("poll interval", self.poll_interval_seconds),
            ("rate window", self.rate_window_seconds),
            ("timeout", self.timeout),
        ):
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"the {name} must be a positive number of seconds, got {value}")
        if self.rate_limit < 1:
            raise ConfigError(f"the rate limit must be at least 1 request per minute, got {self.rate_limit}")
        if self.budget is not None and self.budget < 1:
            raise ConfigError(f"the request budget must allow at least one request, got {self.budget}")
        recheck = self.recheck_running_after_seconds
        if recheck is not None and not (math.isfinite(recheck) and recheck > 0):
            raise ConfigError(
                f"the running-job recheck delay must be a positive number of seconds, got {recheck}"
            )
        if math.isnan(self.lock_timeout) or self.lock_timeout < 0:
            raise ConfigError(f"the lock timeout must be 0 or more seconds, got {self.lock_timeout}")

    @property
    def request_budget(self) -> int:
        if self.budget is not None:
            return self.budget
        per_minute = self.rate_limit * 60.0 / self.rate_window_seconds
        return default_budget(round(per_minute), self.poll_interval_seconds)

    def planner_settings(self) -> PlannerSettings:
        recheck = self.recheck_running_after_seconds
        return PlannerSettings(
            budget=self.request_budget,
            running_recheck_after=None if recheck is None else timedelta(seconds=recheck),
        )

    @classmethod
    def from_env(
        cls, *, base_url: str | None = None, db_path: str | Path | None = None, **kw: object
    ) -> SyncConfig:
        """Settings from arguments, else the environment (DEVANA_API_KEY, DEVANA_API_URL,
        JOBS_PIPELINE_DB), else the documented defaults."""
        key = os.environ.get("DEVANA_API_KEY", "").strip()
        if not key:
            raise ConfigError("DEVANA_API_KEY is not set: export the API key to sync")
        url = base_url or os.environ.get("DEVANA_API_URL") or DEFAULT_BASE_URL
        db = Path(db_path or os.environ.get("JOBS_PIPELINE_DB") or DEFAULT_DB_PATH)
        return cls(base_url=url, api_key=key, db_path=db, **kw)  # type: ignore[arg-type]


def run_sync(config: SyncConfig, *, source: JobsSource | None = None) -> SyncSummary:
    """Run one sync. On any failure the archive is exactly as it was and the error propagates."""
    with ExitStack() as stack:
        if source is None:
            # Ours to close, whatever happens next. Created first: it checks the URL and the key,
            # so a configuration error writes nothing.
            source = stack.enter_context(
                JobsClient(
                    config.base_url,
                    config.api_key,
                    timeout=config.timeout,
                    rate_limit=config.rate_limit,
                    rate_window_seconds=config.rate_window_seconds,
                )
            )
        # A failed first sync leaves no half-made archive behind: open_writer removes the writer
        # directory while it still holds the lock, and only when the store holds no applied sync
        # (never on ArchiveBusyError, never another process's committed first sync).
        conn = stack.enter_context(
            open_writer(
                config.db_path,
                lock_timeout=config.lock_timeout,
                publish=config.publish,
                discard_empty_on_error=True,
            )
        )
        state = load_capture_state(conn, config.tenant)
        result = capture(
            source,
            state,
            config.planner_settings(),
            open_gaps=load_open_gaps(conn, config.tenant),
        )
        if not config.drain_webhooks:
            return apply_capture(conn, result)
        # Read after the fetch: events received while the sync polled are applied by it too.
        drain = read_spool(spool_dir_for(config.db_path, config.tenant))
        stack.callback(drain.release)

        def with_events(conn: duckdb.DuckDBPyConnection, summary: SyncSummary) -> SyncSummary:
            events = merge_webhook_events(
                conn,
                drain.records,
                tenant=summary.tenant,
                sync_id=summary.sync_id,
                observed_at=summary.observed_at,
            )
            return replace(summary, webhook=events) if drain.records else summary

        summary = apply_capture(conn, result, also=with_events)
        # Committed: the segments no receiver writes to any more are applied and can go.
        drain.discard_applied()
        return summary
