"""One sync, end to end: read what the archive knows, plan and fetch, apply atomically.

The CLI's `sync` and the Dagster capture asset both call `run_sync`; neither adds logic of its
own. This module never imports dagster (the CLI's `sync` must start fast).
"""

from __future__ import annotations

import math
import os
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

from jobs_pipeline.api.client import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CLOCK_SKEW_SECONDS,
    JobsClient,
    checked_base_url,
)
from jobs_pipeline.api.errors import ClockSkewError
from jobs_pipeline.api.models import DEFAULT_RATE_LIMIT_PER_MINUTE
from jobs_pipeline.archive import ArchiveError, SyncSummary, apply_capture, open_writer
from jobs_pipeline.archive.state import load_capture_state, load_open_gaps
from jobs_pipeline.archive.webhook_merge import merge_webhook_events
from jobs_pipeline.capture.ledger import JobsSource
from jobs_pipeline.capture.planner import PlannerSettings, capture, default_budget
from jobs_pipeline.capture.types import CaptureResult
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
    # A server whose `Date` strays this far from the local clock is not archived (the sync fails,
    # writes nothing). None: no comparison with the local clock (a twin on simulated time); the
    # archive's last server time is still never allowed to go back by more than the default.
    max_clock_skew_seconds: float | None = DEFAULT_MAX_CLOCK_SKEW_SECONDS
    # The whole sync (every request, retry and sleep) must end within this; the writer lock is
    # released when it fails. None: the poll interval (a sync must not eat the next one's turn),
    # and never less than a minute.
    deadline_seconds: float | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    # Plain http to a host other than this machine sends the key in clear text: refused unless set.
    allow_insecure_http: bool = False

    def __post_init__(self) -> None:
        # Checked before anything is created or sent: a typo must not leave files behind.
        try:
            checked_base_url(self.base_url, allow_insecure_http=self.allow_insecure_http)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
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
        for name, optional in (
            ("allowed clock skew", self.max_clock_skew_seconds),
            ("deadline", self.deadline_seconds),
        ):
            if optional is not None and not (math.isfinite(optional) and optional > 0):
                raise ConfigError(f"the {name} must be a positive number of seconds, got {optional}")
        if self.max_body_bytes < 1:
            raise ConfigError(f"the response size cap must be at least 1 byte, got {self.max_body_bytes}")
        if math.isnan(self.lock_timeout) or self.lock_timeout < 0:
            raise ConfigError(f"the lock timeout must be 0 or more seconds, got {self.lock_timeout}")

    @property
    def sync_deadline_seconds(self) -> float:
        if self.deadline_seconds is not None:
            return self.deadline_seconds
        return max(60.0, self.poll_interval_seconds)

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
        if "allow_insecure_http" not in kw or not kw["allow_insecure_http"]:
            kw["allow_insecure_http"] = os.environ.get("JOBS_PIPELINE_ALLOW_INSECURE_HTTP", "") in (
                "1",
                "true",
                "yes",
            )
        return cls(base_url=url, api_key=key, db_path=db, **kw)  # type: ignore[arg-type]


def run_sync(config: SyncConfig, *, source: JobsSource | None = None) -> SyncSummary:
    """Run one sync. On any failure the archive is exactly as it was and the error propagates."""
    try:
        return _run_sync(config, source)
    except duckdb.Error as exc:
        # Raised once the writer is closed (the transaction rolled back, the lock released): a
        # damaged store (truncated, overwritten) or a full disk surfaces here, at whatever read or
        # write first meets it. One line, with DuckDB's own words, instead of a traceback.
        detail = " ".join(str(exc).split())[:300]
        raise ArchiveError(
            f"the archive {config.db_path} could not be read or written ({type(exc).__name__}: {detail}); "
            "nothing of this sync was kept. A full disk? A damaged store: restore it from a backup"
        ) from None


def _run_sync(config: SyncConfig, source: JobsSource | None) -> SyncSummary:
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
                    max_body_bytes=config.max_body_bytes,
                    max_clock_skew_seconds=config.max_clock_skew_seconds,
                    total_deadline_seconds=config.sync_deadline_seconds,
                    allow_insecure_http=config.allow_insecure_http,
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
        check_server_time(result, state.last_observed_at, config.max_clock_skew_seconds)
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


def check_server_time(
    result: CaptureResult, last_observed_at: datetime | None, allowed: float | None
) -> None:
    """Refuse a sync whose server time goes back past the archive's last accepted server time.

    The archive's timeline is the server's: a sync dated before the previous one would make every
    later comparison (expiry, kills, the 24 h window) wrong. A little jitter is allowed (servers
    behind a load balancer disagree by a second or two).
    """
    if last_observed_at is None:
        return
    tolerance = timedelta(seconds=allowed if allowed is not None else DEFAULT_MAX_CLOCK_SKEW_SECONDS)
    if result.observed_at < last_observed_at - tolerance:
        raise ClockSkewError(
            f"the API's clock ({result.observed_at:%Y-%m-%d %H:%M:%S} UTC) is behind the archive's last "
            f"server time ({last_observed_at:%Y-%m-%d %H:%M:%S} UTC) by more than "
            f"{tolerance.total_seconds():g} s: nothing archived (a server clock that jumped back)"
        )
