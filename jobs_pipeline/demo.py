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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from jobs_pipeline.api.client import JobsClient
from jobs_pipeline.archive import open_for_analysis, open_writer
from jobs_pipeline.report.build import build_report
from jobs_pipeline.stats_store import refresh_statistics
from jobs_pipeline.sync import SyncConfig, run_sync
from jobs_pipeline.twin import Burst, SteppedClock, Twin, TwinConfig

DEMO_KEY = "demo-key"  # the twin's own key; never a real one


@dataclass(frozen=True)
class DemoSettings:
    out: Path = Path("demo-output")
    days: float = 3.0
    jobs_per_day: int = 3000
    poll_minutes: float = 40.0
    seed: int = 42


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
    with twin.serve() as url:
        client = JobsClient(url, DEMO_KEY, rate_limit=1_000_000)
        config = SyncConfig(
            base_url=url,
            api_key=DEMO_KEY,
            db_path=db,
            poll_interval_seconds=poll.total_seconds(),
            publish=False,  # the statistics step below publishes once
        )
        try:
            for i in range(total):
                summary = run_sync(config, source=client)
                requests += summary.requests
                on_sync(i + 1, total)
                clock.advance(poll)
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
    )
