"""What a steady-state sync costs as the archive's history grows (issue: an archive that lasts).

For each history size (days of a `--jobs-per-day` tenant, default 40,000), an archive is built
through the archive's own write path (`open_writer` + `apply_capture`: three observations per job,
PENDING -> IN_PROGRESS -> DONE|ERROR, payloads of 300-600 bytes, the days sealed as they age), then
`--syncs` real `run_sync` calls run against the embedded twin (HTTP on 127.0.0.1, a stepped clock
5 twin-minutes apart). Reported per size:

* disk: every file of the archive (published copy, private store, sealed Parquet) and the ratio
  to the data files alone (store + sealed: what a second full copy would double);
* per sync (median): wall, bytes written (/proc/self/io write_bytes), split into fetch / merge /
  seal / publish, and peak RSS;
* one-day statistics refresh and report build;
* an analyst query (p95 run time per type per day over the last 30 days, on `jobs`) on the
  published copy, against the same query on a single-file archive of the same rows.

Usage: .venv/bin/python -m benchmarks.history_scale --days 1,30,90 [--jobs-per-day 40000]
The same script runs on an older checkout (no sealing): phases it cannot see are reported as '-'.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from benchmarks.ingest import SyntheticJob, metadata_for, observation
from jobs_pipeline.archive import apply_capture, open_for_analysis, open_writer
from jobs_pipeline.archive import merge as merge_module
from jobs_pipeline.archive import writer as writer_module
from jobs_pipeline.capture.types import CaptureResult
from jobs_pipeline.stats_store import refresh_statistics
from jobs_pipeline.sync import SyncConfig, run_sync
from jobs_pipeline.twin.clock import SteppedClock
from jobs_pipeline.twin.config import TwinConfig
from jobs_pipeline.twin.twin import Twin

TENANT = "default"
KEY = "bench-key"
TYPES = ("EXTRACTION", "EMBEDDING", "SYNC", "IMPORT", "TRANSCRIPTION", "GENERATION")

ANALYST_QUERY = """
SELECT (completed_at AT TIME ZONE 'UTC')::DATE AS day, job_type,
       quantile_cont(epoch(completed_at - started_at), 0.95) AS p95_s, count(*) AS runs
FROM jobs
WHERE status = 'DONE' AND created_at >= (SELECT max(created_at) FROM jobs) - INTERVAL 30 DAY
GROUP BY ALL ORDER BY ALL
"""


def written_bytes() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


def tree_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def day_specs(day_start: datetime, count: int, day_index: int) -> list[SyntheticJob]:
    import random

    rng = random.Random(day_index)
    spacing = timedelta(days=1) / count
    return [
        SyntheticJob(
            n=n,
            job_id=f"d{day_index:04d}j{n:07d}{rng.getrandbits(40):010x}",
            user_id=f"cu{n % 3001:011x}",
            target_id=f"ct{n % 50021:011x}",
            job_type=TYPES[n % len(TYPES)],
            created_at=day_start + spacing * n,
            metadata=metadata_for(TYPES[n % len(TYPES)], n, rng),
            fails=n % 20 == 0,
        )
        for n in range(count)
    ]


def day_results(day_index: int, day_start: datetime, count: int) -> Iterator[CaptureResult]:
    """Three syncs after the day: every job of the day seen queued, running, then finished."""
    specs = day_specs(day_start, count, day_index)
    for step, state in enumerate((0, 1, 3)):
        observed = day_start + timedelta(days=1, minutes=5 * (step + 1))
        yield CaptureResult(
            tenant=TENANT,
            sync_id=f"hist-{day_index}-{step}",
            started_at=observed,
            finished_at=observed + timedelta(seconds=30),
            observed_at=observed,
            requests=count // 100 + 1,
            pages=count // 100 + 1,
            observations=[observation(spec, state, observed) for spec in specs],
            vanished=[],
            gaps=[],
            rejects=[],
        )


@dataclass
class Phases:
    seconds: dict[str, float] = field(default_factory=dict)

    def wrap(self, module: Any, name: str, phase: str) -> Callable[[], None]:
        original = getattr(module, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - started

        setattr(module, name, timed)
        return lambda: setattr(module, name, original)


def measure_syncs(db: Path, first_instant: datetime, syncs: int, jobs_per_day: int) -> list[dict[str, float]]:
    clock = SteppedClock(start=first_instant)
    twin = Twin(
        TwinConfig(jobs_per_day=jobs_per_day, seed=3, history_hours=26, api_keys=(KEY,), rate_limit=None),
        clock=clock,
    )
    runs = []
    with twin.serve() as url:
        config = SyncConfig(base_url=url, api_key=KEY, db_path=db, poll_interval_seconds=300)
        if hasattr(config, "max_clock_skew_seconds"):  # the twin runs on a stepped clock, not ours
            config = dataclasses.replace(config, max_clock_skew_seconds=None)
        for i in range(syncs + 1):
            phases = Phases()
            undo = [phases.wrap(writer_module, "publish_store", "publish")]
            undo.append(phases.wrap(merge_module, "apply_capture_frames", "merge+seal"))
            if hasattr(merge_module, "seal_ready_days"):
                undo.append(phases.wrap(merge_module, "seal_ready_days", "seal"))
            before_io, started = written_bytes(), time.perf_counter()
            try:
                run_sync(config)
            finally:
                for restore in undo:
                    restore()
            wall = time.perf_counter() - started
            if i > 0:  # the first sync catches up on the twin's 26 h: not steady state
                seal = phases.seconds.get("seal", float("nan"))
                merge = phases.seconds.get("merge+seal", 0.0) - (seal if seal == seal else 0.0)
                runs.append(
                    {
                        "wall": wall,
                        "written": written_bytes() - before_io,
                        "publish": phases.seconds.get("publish", 0.0),
                        "merge": merge,
                        "seal": seal,
                        "fetch": wall
                        - phases.seconds.get("publish", 0.0)
                        - phases.seconds.get("merge+seal", 0.0),
                    }
                )
            clock.advance(timedelta(minutes=5))
    return runs


def timed(action: Callable[[], Any], repeat: int = 5) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def single_file_copy(db: Path, target: Path) -> None:
    with contextlib.closing(open_for_analysis(db)) as source:
        quoted = str(target).replace("'", "''")
        source.execute(f"ATTACH '{quoted}' AS single")
        source.execute("CREATE TABLE single.jobs AS SELECT * FROM jobs")
        source.execute("DETACH single")


def analyst_query_seconds(path: Path, *, published: bool) -> float:
    conn = open_for_analysis(path) if published else duckdb.connect(str(path), read_only=True)
    with contextlib.closing(conn):
        return timed(lambda: conn.execute(ANALYST_QUERY).fetchall())


def report_seconds(db: Path) -> float:
    from jobs_pipeline.report.build import build_report

    with contextlib.closing(open_for_analysis(db)) as conn:
        return timed(lambda: build_report(conn), repeat=3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", default="1,30,90", help="history sizes, comma separated")
    parser.add_argument("--jobs-per-day", type=int, default=40_000)
    parser.add_argument("--syncs", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    sizes = sorted({int(d) for d in args.days.split(",")})
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="history-scale-"))
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    first_day = (now - timedelta(days=max(sizes) + 2)).replace(hour=0)
    db = workdir / "build" / "archive.duckdb"
    db.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    built = 0
    build_started = time.perf_counter()
    for size in sizes:
        while built < size:
            with open_writer(db, publish=False) as conn:
                for result in day_results(built, first_day + timedelta(days=built), args.jobs_per_day):
                    apply_capture(conn, result)
            built += 1
        # Measure on a copy, so the next size keeps building on the untouched history.
        measured = workdir / f"days-{size}"
        shutil.rmtree(measured, ignore_errors=True)
        shutil.copytree(db.parent, measured, symlinks=True)
        copy_db = measured / "archive.duckdb"
        history_end = first_day + timedelta(days=size + 1, hours=1)
        runs = measure_syncs(
            copy_db, max(history_end, now - timedelta(hours=2)), args.syncs, args.jobs_per_day
        )
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        store = copy_db.parent / f".{copy_db.name}.writer" / "archive.duckdb"
        sealed = copy_db.parent / f"{copy_db.stem}.sealed"
        data = store.stat().st_size + (tree_bytes(sealed) if sealed.exists() else 0)
        total = tree_bytes(measured)
        with open_writer(copy_db, publish=True) as conn:
            last_day = conn.execute("SELECT max(created_at)::DATE FROM jobs").fetchall()[0][0]
            refresh_statistics(conn, days=[last_day])  # warm: schema created
            stats_s = timed(lambda: refresh_statistics(conn, days=[last_day]), repeat=3)  # noqa: B023
        single = measured / "single.duckdb"
        single_file_copy(copy_db, single)
        with contextlib.closing(open_for_analysis(copy_db)) as conn:
            jobs = conn.execute("SELECT count(*) FROM jobs").fetchall()[0][0]
            snapshots = conn.execute("SELECT count(*) FROM job_snapshots").fetchall()[0][0]
        query_s = analyst_query_seconds(copy_db, published=True)
        single_s = analyst_query_seconds(single, published=False)
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        rows.append(
            {
                "days": size,
                "jobs": jobs,
                "snapshots": snapshots,
                "disk_mb": total / 1e6,
                "disk_vs_data": total / data,
                **med,
                "rss_mb": rss_mb,
                "stats_s": stats_s,
                "report_s": report_seconds(copy_db),
                "query_s": query_s,
                "query_single_s": single_s,
            }
        )
        print(format_row(rows[-1]), flush=True)
        shutil.rmtree(measured, ignore_errors=True)
    print(f"\nbuild: {time.perf_counter() - build_started:.0f} s total; workdir {workdir}")
    print(markdown(rows))


def format_row(row: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())


def markdown(rows: list[dict[str, float]]) -> str:
    base = rows[0]
    lines = [
        "| days | jobs | snapshots | disk MB (x data files) | sync wall s (x 1st) | written MB/sync (x 1st) "
        "| fetch / merge / seal / publish s | peak RSS MB | 1-day stats s | report s | analyst query s (x single file) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        seal = "-" if r["seal"] != r["seal"] else f"{r['seal']:.2f}"
        lines.append(
            f"| {r['days']} | {r['jobs']:,} | {r['snapshots']:,} | {r['disk_mb']:.0f} ({r['disk_vs_data']:.2f}) "
            f"| {r['wall']:.2f} ({r['wall'] / base['wall']:.2f}) "
            f"| {r['written'] / 1e6:.1f} ({r['written'] / base['written']:.2f}) "
            f"| {r['fetch']:.2f} / {r['merge']:.2f} / {seal} / {r['publish']:.2f} "
            f"| {r['rss_mb']:.0f} | {r['stats_s']:.2f} | {r['report_s']:.2f} "
            f"| {r['query_s'] * 1000:.0f} ms ({r['query_s'] / r['query_single_s']:.2f}) |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
