"""Shared-key benchmark: back-to-back syncs in real time with a watcher beside, one API key.

    .venv/bin/python -m benchmarks.shared_key [--syncs 8] [--load 6000] [--limit 20] [--window 2.0] [--budget 60]

Each sync is what one `jobs-pipeline sync` process does: a fresh client, then one sync into a real
DuckDB archive. Between syncs the twin's stepped clock moves one poll interval, but in real time
the next sync starts at once, while the previous one's requests are still inside the server's
rolling window. Beside them a watcher thread (what `jobs-pipeline watch` sends: the recent page
and the running slice, over and over) uses the same key. The twin enforces its strict limit
(`--limit` requests per `--window` seconds of real time, shrunk from 100 per minute so the run
takes seconds); faults are off, so every 429 is a real overrun.

Two arms in one run, against twins of the same seed:
- per-process: every client has its own limiter (what separate processes had before issue 15);
- shared: every client draws from one budget file per key (api/shared_budget.py).
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from benchmarks.capture import KEY, T0
from jobs_pipeline.api.client import JobsClient
from jobs_pipeline.api.errors import ApiError
from jobs_pipeline.api.limiter import SlidingWindowLimiter
from jobs_pipeline.sync import SyncConfig, run_sync
from jobs_pipeline.twin import FaultConfig, SteppedClock, Twin, TwinConfig

RESULTS = Path(__file__).parent / "results"


@dataclass
class Arm:
    name: str
    sync_requests: int = 0
    sync_429: int = 0
    watch_requests: int = 0
    watch_429: int = 0
    failed_syncs: int = 0  # gave up (the client's retries exhausted by 429s)
    seconds: float = 0.0


def run_arm(name: str, args: argparse.Namespace, state_dir: Path | None) -> Arm:
    arm = Arm(name)
    clock = SteppedClock(start=T0)
    twin = Twin(
        TwinConfig(
            jobs_per_day=args.load,
            seed=args.seed,
            api_keys=(KEY,),
            rate_limit=args.limit,
            rate_window_seconds=args.window,
            faults=FaultConfig(rate=0.0),
        ),
        clock=clock,
    )

    def client() -> JobsClient:
        if state_dir is None:
            # A process of its own: a limiter nobody else draws from, empty at start.
            private = SlidingWindowLimiter(args.limit, args.window)
            return JobsClient(
                url, KEY, limiter=private, rate_limit=args.limit, rate_window_seconds=args.window
            )
        return JobsClient(
            url, KEY, rate_limit=args.limit, rate_window_seconds=args.window, rate_state_dir=state_dir
        )

    stop = threading.Event()

    def watch() -> None:
        with client() as watcher:
            while not stop.is_set():
                try:
                    watcher.list_jobs(limit=25)
                    watcher.list_jobs(status="IN_PROGRESS", limit=100)
                except ApiError:
                    pass  # watch shows the error and goes on; its 429s are counted below
                stop.wait(args.watch_pause)
            arm.watch_requests, arm.watch_429 = watcher.requests_sent, watcher.responses_429

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, twin.serve() as url:
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        config = SyncConfig(
            base_url=url,
            api_key=KEY,
            db_path=Path(tmp) / "archive.duckdb",
            poll_interval_seconds=600,
            rate_limit=args.limit,
            rate_window_seconds=args.window,
            budget=args.budget,
        )
        for _ in range(args.syncs):
            with client() as syncer:
                try:
                    run_sync(config, source=syncer)
                except ApiError:
                    arm.failed_syncs += 1  # the archive is left as it was; the next sync catches up
                arm.sync_requests += syncer.requests_sent
                arm.sync_429 += syncer.responses_429
            clock.advance(timedelta(minutes=10))
        stop.set()
        watcher.join(timeout=60)
    arm.seconds = time.perf_counter() - started
    return arm


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--syncs", type=int, default=8)
    parser.add_argument("--load", type=int, default=6000)
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--window", type=float, default=2.0)
    parser.add_argument("--budget", type=int, default=60, help="requests per sync (the first one spends it)")
    parser.add_argument("--watch-pause", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--out", type=Path, default=RESULTS / "shared-key.md")
    args = parser.parse_args()
    arms = [run_arm("per-process limiters", args, None)]
    with tempfile.TemporaryDirectory() as state:
        arms.append(run_arm("one shared budget per key", args, Path(state)))
    table = (
        f"Shared-key benchmark: {args.syncs} back-to-back syncs at {args.load} jobs/day plus a watcher, "
        f"one key, strict limit {args.limit} per {args.window:g} s real time, no injected faults.\n\n"
        "| limiters | sync requests | sync 429s | failed syncs | watch requests | watch 429s | seconds |\n"
        "|---|---|---|---|---|---|---|\n"
        + "".join(
            f"| {a.name} | {a.sync_requests} | {a.sync_429} | {a.failed_syncs} | {a.watch_requests} | {a.watch_429} | {a.seconds:.0f} |\n"
            for a in arms
        )
    )
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table)


if __name__ == "__main__":
    main()
