"""Ingest benchmark: the archive's real merge path vs a raw DuckDB bulk insert of the same rows.

    .venv/bin/python -m benchmarks.ingest [--rows 1000000] [--runs 3]

Synthetic history: `rows / 4` jobs, each observed in 4 states (PENDING, IN_PROGRESS at 35 %,
IN_PROGRESS at 80 %, DONE or ERROR) by 4 syncs, so every observation is a change and the archive
ends with `rows` job_snapshots. Payloads look like the API's (ids, camelCase fields, per-type
metadata, ~450 bytes of JSON).

Three timings per run, each on a fresh DuckDB file:
* merge (end to end): `apply_capture(conn, result)` for the 4 results: Python objects -> Arrow
  (JSON text of every payload and metadata) -> reconcile -> snapshots, jobs MERGE, status changes,
  sync_runs.
* merge (from frames): `apply_capture_frames` on frames built beforehand: the same work minus
  the per-object Python conversion, i.e. the DuckDB/Polars part alone.
* raw insert: `INSERT INTO job_snapshots SELECT ... FROM arrow_table` of the very Arrow tables the
  merge ingested (snapshot columns only, no jobs/changes upkeep, no comparison).
rows/s = snapshot rows written / seconds; medians over the runs; goal: merge >= 0.5x raw.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pyarrow as pa

from jobs_pipeline.api.models import Job
from jobs_pipeline.archive.frames import CaptureFrames, build_capture_frames
from jobs_pipeline.archive.merge import apply_capture, apply_capture_frames
from jobs_pipeline.archive.migrations import migrate
from jobs_pipeline.archive.session import configure_session
from jobs_pipeline.capture.types import CaptureResult, Observation

T = TypeVar("T")
RESULTS = Path(__file__).parent / "results" / "ingest.md"
TENANT = "bench"
STATES = 4
START = datetime(2025, 3, 1, tzinfo=UTC)
TYPES = ("EXTRACTION", "EMBEDDING", "SYNC", "IMPORT", "TRANSCRIPTION", "GENERATION")


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def metadata_for(job_type: str, n: int, rng: random.Random) -> dict[str, Any]:
    if job_type in ("EXTRACTION", "TRANSCRIPTION"):
        return {
            "documentId": f"doc_{n:012x}",
            "fileName": f"rapport-trimestriel-{n}.pdf",
            "mimeType": "application/pdf",
            "pages": rng.randint(1, 400),
            "sizeBytes": rng.randint(10_000, 50_000_000),
        }
    if job_type == "EMBEDDING":
        return {
            "documentId": f"doc_{n:012x}",
            "model": "text-embedding-3-large",
            "chunks": rng.randint(1, 900),
        }
    if job_type == "SYNC":
        return {"folderId": f"fld_{n % 997:08x}", "source": "sharepoint", "files": rng.randint(1, 5000)}
    return {"agentId": f"agt_{n % 101:06x}", "tokens": rng.randint(10, 20000), "locale": "fr-FR"}


@dataclass(frozen=True, slots=True)
class SyntheticJob:
    n: int
    job_id: str
    user_id: str
    target_id: str
    job_type: str
    created_at: datetime
    metadata: dict[str, Any]
    fails: bool


def synthetic_jobs(count: int, seed: int = 7) -> list[SyntheticJob]:
    rng = random.Random(seed)
    return [
        SyntheticJob(
            n=n,
            job_id=f"cm{n:011x}{rng.getrandbits(48):012x}",
            user_id=f"cu{n % 3001:011x}{n % 7:012x}",
            target_id=f"ct{n % 50021:011x}{n % 13:012x}",
            job_type=TYPES[n % len(TYPES)],
            created_at=START + timedelta(milliseconds=n * 250),
            metadata=metadata_for(TYPES[n % len(TYPES)], n, rng),
            fails=n % 20 == 0,
        )
        for n in range(count)
    ]


def observation(spec: SyntheticJob, state: int, observed_at: datetime) -> Observation:
    """The job in lifecycle state 0..3, exactly as the API client would hand it over."""
    status, progress = [("PENDING", 0), ("IN_PROGRESS", 35), ("IN_PROGRESS", 80), ("DONE", 100)][state]
    error = None
    if state == 3 and spec.fails:
        status, progress, error = "ERROR", 80, "Extraction failed: unreadable page 12 (corrupted stream)"
    started = spec.created_at + timedelta(seconds=2) if state >= 1 else None
    completed = spec.created_at + timedelta(seconds=90) if state == 3 else None
    updated = spec.created_at + timedelta(seconds=[0, 2, 40, 90][state])
    raw: dict[str, Any] = {
        "id": spec.job_id,
        "userId": spec.user_id,
        "targetId": spec.target_id,
        "type": spec.job_type,
        "status": status,
        "progress": progress,
        "metadata": spec.metadata,
        "createdAt": iso(spec.created_at),
        "updatedAt": iso(updated),
    }
    if started:
        raw["startedAt"] = iso(started)
    if completed:
        raw["completedAt"] = iso(completed)
    if error:
        raw["error"] = error
    job = Job(
        id=spec.job_id,
        user_id=spec.user_id,
        target_id=spec.target_id,
        type=spec.job_type,
        status=status,
        created_at=spec.created_at,
        updated_at=updated,
        progress=progress,
        metadata=spec.metadata,
        error=error,
        started_at=started,
        completed_at=completed,
        raw=raw,
    )
    return Observation(job=job, observed_at=observed_at)


def capture_results(specs: list[SyntheticJob]) -> Iterator[CaptureResult]:
    """One sync per lifecycle state, each observing every job (generated lazily: memory stays flat)."""
    for state in range(STATES):
        observed_at = START + timedelta(days=1, minutes=5 * state)
        # Observations arrive stamped by their page's Date header: one instant per 100 rows.
        observations = [
            observation(spec, state, observed_at + timedelta(seconds=i // 100 % 60))
            for i, spec in enumerate(specs)
        ]
        yield CaptureResult(
            tenant=TENANT,
            sync_id=f"bench-{state}",
            started_at=observed_at,
            finished_at=observed_at + timedelta(minutes=1),
            observed_at=observed_at,
            requests=len(specs) // 100 + 1,
            pages=len(specs) // 100 + 1,
            observations=observations,
            vanished=[],
            gaps=[],
            rejects=[],
        )


def fresh_archive(directory: Path, name: str) -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect(str(directory / f"{name}.duckdb"))
    configure_session(conn)
    migrate(conn)
    return conn


@dataclass(slots=True)
class Cost:
    """Wall-clock seconds, and CPU seconds of this process (all DuckDB/Polars threads included).

    CPU time is reported too because a shared 2-core box makes wall-clock time noisy: it measures
    the work done, whatever else the machine is running.
    """

    wall: float = 0.0
    cpu: float = 0.0

    def __iadd__(self, other: Cost) -> Cost:
        self.wall += other.wall
        self.cpu += other.cpu
        return self


def timed(action: Callable[..., T], *args: Any) -> tuple[T, Cost]:
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    value = action(*args)
    return value, Cost(time.perf_counter() - wall, time.process_time() - cpu)


@dataclass(slots=True)
class Run:
    merge_end_to_end: Cost = field(default_factory=Cost)
    frame_building: Cost = field(default_factory=Cost)
    merge_from_frames: Cost = field(default_factory=Cost)
    raw_insert: Cost = field(default_factory=Cost)
    snapshots: int = 0


def one_run(specs: list[SyntheticJob], workdir: Path) -> Run:
    """The three paths, interleaved sync by sync so that machine noise hits them alike."""
    run = Run()
    end_to_end = fresh_archive(workdir, "end_to_end")
    from_frames = fresh_archive(workdir, "from_frames")
    raw = fresh_archive(workdir, "raw")
    for result in capture_results(specs):
        run.merge_end_to_end += timed(apply_capture, end_to_end, result)[1]
        frames, cost = timed(build_capture_frames, result)
        run.frame_building += cost
        del result
        run.merge_from_frames += timed(apply_capture_frames, from_frames, frames)[1]
        run.raw_insert += timed(raw_insert, raw, snapshot_table(frames))[1]
    # Work DuckDB deferred (compressing and checkpointing what was appended) belongs to each path.
    run.merge_end_to_end += timed(end_to_end.execute, "CHECKPOINT")[1]
    run.merge_from_frames += timed(from_frames.execute, "CHECKPOINT")[1]
    run.raw_insert += timed(raw.execute, "CHECKPOINT")[1]
    counts = {
        name: conn.execute("SELECT count(*) FROM job_snapshots").fetchall()[0][0]
        for name, conn in (("end_to_end", end_to_end), ("from_frames", from_frames), ("raw", raw))
    }
    if len(set(counts.values())) != 1:
        raise SystemExit(f"the three paths disagree on the snapshot count: {counts}")
    run.snapshots = counts["raw"]
    for conn in (end_to_end, from_frames, raw):
        conn.close()
    return run


def snapshot_table(frames: CaptureFrames) -> pa.Table:
    """The Arrow table the merge ingested, shaped like job_snapshots (constant columns added)."""
    table = frames.observations
    rows = table.num_rows
    return pa.table(
        {
            "tenant": pa.array([TENANT] * rows, pa.string()),
            "sync_id": pa.array([frames.header.sync_id] * rows, pa.string()),
            "job_id": table["job_id"],
            "observed_at": table["observed_at"],
            "status": table["status"],
            "progress": table["progress"],
            "updated_at": table["updated_at"],
            "error": table["error"],
            "metadata": table["metadata"],
            "payload": table["payload"],
        }
    )


def raw_insert(conn: duckdb.DuckDBPyConnection, arrow_table: pa.Table) -> None:
    conn.register("arrow_table", arrow_table)
    conn.execute("INSERT INTO hot.job_snapshots SELECT * FROM arrow_table")
    conn.unregister("arrow_table")


def report(runs: list[Run], rows: int, command: str) -> str:
    snapshots = runs[0].snapshots
    paths: list[tuple[str, Callable[[Run], Cost], bool]] = [
        ("raw `INSERT INTO job_snapshots SELECT * FROM arrow_table`", lambda r: r.raw_insert, True),
        ("merge from frames (`apply_capture_frames`)", lambda r: r.merge_from_frames, True),
        ("merge end to end (`apply_capture`, from Python objects)", lambda r: r.merge_end_to_end, True),
        ("of which: objects -> Arrow (`build_capture_frames`)", lambda r: r.frame_building, False),
    ]

    def median(pick: Callable[[Run], Cost], kind: str) -> float:
        return statistics.median(getattr(pick(run), kind) for run in runs)

    raw_wall, raw_cpu = median(paths[0][1], "wall"), median(paths[0][1], "cpu")
    lines = [
        "# Ingest benchmark",
        "",
        f"{snapshots:,} job_snapshots ({rows // STATES:,} jobs x {STATES} states, 4 syncs), "
        f"median of {len(runs)} runs, DuckDB {duckdb.__version__}, fresh file per path, "
        f"{os.cpu_count()} CPUs.",
        "",
        f"    {command}",
        "",
        "| path | wall s | rows/s (wall) | vs raw (wall) | CPU s | rows/s (CPU) | vs raw (CPU) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, pick, compare in paths:
        wall, cpu = median(pick, "wall"), median(pick, "cpu")
        wall_ratio = f"{raw_wall / wall:.2f}x" if compare else ""
        cpu_ratio = f"{raw_cpu / cpu:.2f}x" if compare else ""
        lines.append(
            f"| {label} | {wall:.2f} | {snapshots / wall:,.0f} | {wall_ratio} "
            f"| {cpu:.2f} | {snapshots / cpu:,.0f} | {cpu_ratio} |"
        )
    lines += [
        "",
        "Each path's time includes the final CHECKPOINT of its file. The merge also maintains `jobs` "
        "(insert or update of one row per job per sync), appends `job_status_changes` and compares "
        "every observation with the archived row; the raw insert writes the snapshot rows only. "
        "The end-to-end figure adds turning Python `Job` objects into Arrow: one pass over the objects "
        "per column (attributes, timestamps) and the JSON text of every payload and metadata (orjson "
        "into one buffer per column, byte for byte the stdlib encoder's text: archive/jsoncolumn.py).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="job_snapshots to ingest (multiple of 4)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help=f"do not write {RESULTS}")
    args = parser.parse_args()
    specs = synthetic_jobs(args.rows // STATES)
    runs = []
    for number in range(1, args.runs + 1):
        workdir = Path(tempfile.mkdtemp(prefix="ingest-bench-"))
        try:
            run = one_run(specs, workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        print(
            f"run {number}: wall (CPU) seconds: end-to-end {run.merge_end_to_end.wall:.2f} "
            f"({run.merge_end_to_end.cpu:.2f}), of which objects->Arrow {run.frame_building.wall:.2f} "
            f"({run.frame_building.cpu:.2f}); from frames {run.merge_from_frames.wall:.2f} "
            f"({run.merge_from_frames.cpu:.2f}); raw insert {run.raw_insert.wall:.2f} ({run.raw_insert.cpu:.2f})",
            flush=True,
        )
        runs.append(run)
    command = f".venv/bin/python -m benchmarks.ingest --rows {args.rows} --runs {args.runs}"
    text = report(runs, args.rows, command)
    print()
    print(text)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
