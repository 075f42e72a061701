"""The end-to-end demo: a twin with days of history, syncs across it, statistics, a report.

Everything runs on this machine with no key: the embedded twin serves the API on 127.0.0.1 and
its clock is stepped poll by poll, so days of history take seconds. The archive, statistics and
report are the real ones: the same `run_sync`, `refresh_statistics` and `build_report` that the
CLI and Dagster use.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from jobs_pipeline.api.client import JobsClient
from jobs_pipeline.archive import open_for_analysis, open_writer
from jobs_pipeline.report.build import build_report
from jobs_pipeline.stats_store import refresh_statistics
from jobs_pipeline.sync import SyncConfig, run_sync
from jobs_pipeline.twin import Burst, SteppedClock, Twin, TwinConfig
from jobs_pipeline.twin.webhooks import WebhookDeliveryConfig, WebhookSender
from jobs_pipeline.webhook.receiver import DEFAULT_PATH, ReceiverSettings, build_app
from jobs_pipeline.webhook.server import serve_in_thread
from jobs_pipeline.webhook.spool import spool_dir_for

DEMO_KEY = "demo-key"  # the twin's own key; never a real one


@dataclass(frozen=True)
class DemoSettings:
    out: Path = Path("demo-output")
    days: float = 3.0
    jobs_per_day: int = 3000
    poll_minutes: float = 40.0
    seed: int = 42
    # The twin also POSTs every transition to a webhook receiver for the last hours of the demo
    # (0: polling only). Events date what polls cannot: kills, and states shorter than a poll.
    webhook_hours: float = 6.0


@dataclass(frozen=True)
class DemoResult:
    db: Path
    report: Path
    syncs: int
    requests: int
    jobs: int
    snapshots: int
    changes: int
    killed: int
    gaps: int
    seconds: float
    webhook_events: int = 0  # events the syncs applied (each once)
    killed_exact: int = 0  # KILLED jobs whose kill time is exact (from an event)


def run_demo(
    settings: DemoSettings,
    *,
    on_sync: Callable[[int, int], None] = lambda done, total: None,
    on_step: Callable[[str], None] = lambda label: None,
) -> DemoResult:
    started = time.perf_counter()
    out = settings.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    db = out / "archive.duckdb"
    end = datetime.now(UTC).replace(microsecond=0)
    start = end - timedelta(days=settings.days)
    clock = SteppedClock(start=start)
    # A batch import on the second day shows how the archive rides a burst past the API's cap.
    burst = Burst(at=start + timedelta(days=min(1.4, settings.days / 2)), count=1500, job_type="EXTRACTION")
    twin = Twin(
        TwinConfig(
            jobs_per_day=settings.jobs_per_day,
            seed=settings.seed,
            history_hours=26,
            api_keys=(DEMO_KEY,),
            rate_limit=None,  # the clock is stepped: a simulated minute lasts milliseconds here
            bursts=(burst,),
        ),
        clock=clock,
    )
    poll = timedelta(minutes=settings.poll_minutes)
    total = int((end - start) / poll) + 1
    requests = 0
    webhook_from = (
        total - int(timedelta(hours=settings.webhook_hours) / poll) if settings.webhook_hours > 0 else None
    )
    with twin.serve() as url, ExitStack() as webhooks:
        client = JobsClient(url, DEMO_KEY, rate_limit=1_000_000)
        sender: WebhookSender | None = None
        config = SyncConfig(
            base_url=url,
            api_key=DEMO_KEY,
            db_path=db,
            poll_interval_seconds=poll.total_seconds(),
            publish=False,  # the statistics step below publishes once
        )
        try:
            for i in range(total):
                if i == webhook_from:
                    sender = _start_webhooks(twin, db, webhooks)
                summary = run_sync(config, source=client)
                requests += summary.requests
                on_sync(i + 1, total)
                clock.advance(poll)
                if sender is not None:
                    twin.tick()  # live the poll's transitions now, so their events are sent
                    sender.flush()
        finally:
            client.close()
    on_step("statistics")
    with open_writer(db) as conn:
        refresh_statistics(conn)
    on_step("report")
    report = out / "report.html"
    with open_for_analysis(db) as conn:
        report.write_text(build_report(conn), encoding="utf-8")
        jobs, killed = conn.execute(
            "SELECT count(*), count(*) FILTER (status = 'KILLED') FROM jobs"
        ).fetchall()[0]
        snapshots = conn.execute("SELECT count(*) FROM job_snapshots").fetchall()[0][0]
        changes = conn.execute("SELECT count(*) FROM job_status_changes").fetchall()[0][0]
        gaps = conn.execute("SELECT count(*) FROM sync_runs WHERE NOT coverage_complete").fetchall()[0][0]
        events = conn.execute("SELECT count(*) FROM webhook_events").fetchall()[0][0]
        killed_exact = conn.execute(
            "SELECT count(*) FROM job_status_changes WHERE to_status = 'KILLED' AND changed_at IS NOT NULL"
        ).fetchall()[0][0]
    return DemoResult(
        db=db,
        report=report,
        syncs=total,
        requests=requests,
        jobs=jobs,
        snapshots=snapshots,
        changes=changes,
        killed=killed,
        gaps=gaps,
        seconds=time.perf_counter() - started,
        webhook_events=events,
        killed_exact=killed_exact,
    )


def _start_webhooks(twin: Twin, db: Path, stack: ExitStack) -> WebhookSender:
    """A receiver on uvicorn (what `webhook serve` runs) spooling beside the archive, and the twin
    posting every transition to it with some duplicates and reordering, as real webhooks do."""
    app = build_app(ReceiverSettings(spool_dir=spool_dir_for(db)))
    url = stack.enter_context(serve_in_thread(app))
    sender = twin.deliver_webhooks(
        WebhookDeliveryConfig(url=url + DEFAULT_PATH, duplicate=0.02, reorder=0.05)
    )
    stack.callback(sender.close)
    return sender
