"""Where a merge's time goes, statement by statement (the ingest benchmark's data, one file).

    .venv/bin/python -m benchmarks.ingest_profile [--rows 1000000]

The synthetic history of benchmarks/ingest.py (rows / 4 jobs, 4 syncs), frames built beforehand
(not timed). Each sync goes through `apply_capture_frames` on a connection wrapper that times
every database call the merge makes (wall and CPU seconds of this process), then the raw insert
of the same rows runs on a second file for comparison; both files end with a CHECKPOINT.
"Python (Polars)" is what the merge spent outside the database: reconcile, frame handling.
COMMIT includes the checkpoint DuckDB runs by itself when the WAL passes `checkpoint_threshold`.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import duckdb

from benchmarks.ingest import (
    STATES,
    capture_results,
    fresh_archive,
    raw_insert,
    snapshot_table,
    synthetic_jobs,
)
from jobs_pipeline.archive.frames import build_capture_frames
from jobs_pipeline.archive.merge import apply_capture_frames

Totals = dict[str, list[float]]  # label -> [wall seconds, CPU seconds]


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


class _Timed:
    """Adds the wall and CPU time of the `with` block to totals[label]."""

    def __init__(self, totals: Totals, label: str) -> None:
        self.totals, self.label = totals, label

    def __enter__(self) -> None:
        self.start = _clock()

    def __exit__(self, *exc: object) -> None:
        wall, cpu = _clock()
        entry = self.totals.setdefault(self.label, [0.0, 0.0])
        entry[0] += wall - self.start[0]
        entry[1] += cpu - self.start[1]


class _Relation:
    """A relation whose rows are fetched (and timed) when the merge asks for them."""

    def __init__(self, relation: Any, totals: Totals) -> None:  # relation: a DuckDB relation
        self._relation, self._totals = relation, totals

    def pl(self) -> Any:
        with _Timed(self._totals, "SELECT archived rows (LEFT JOIN jobs) -> Polars"):
            return self._relation.pl()


class ProfilingConnection:
    """Forwards to a real connection, timing each statement under its first words."""

    def __init__(self, real: duckdb.DuckDBPyConnection) -> None:
        self._real = real
        self.totals: Totals = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def execute(self, query: str, *args: Any, **kwargs: Any) -> Any:
        words = query.split()
        label = " ".join(words[: {"INSERT": 3, "UPDATE": 3, "SELECT": 4}.get(words[0], 1)])
        with _Timed(self.totals, label):
            return self._real.execute(query, *args, **kwargs)

    def sql(self, query: str, *args: Any, **kwargs: Any) -> _Relation:
        return _Relation(self._real.sql(query, *args, **kwargs), self.totals)

    def register(self, name: str, frame: object) -> Any:
        with _Timed(self.totals, "register frames"):
            return self._real.register(name, frame)


def profile(rows: int) -> str:
    frames = [build_capture_frames(result) for result in capture_results(synthetic_jobs(rows // STATES))]
    workdir = Path(tempfile.mkdtemp(prefix="ingest-profile-"))
    per_sync: list[Totals] = []
    try:
        merged, raw = fresh_archive(workdir, "merge"), fresh_archive(workdir, "raw")
        for sync in frames:
            proxy = ProfilingConnection(merged)
            with _Timed(proxy.totals, "TOTAL merge"):
                apply_capture_frames(cast(duckdb.DuckDBPyConnection, proxy), sync)
            with _Timed(proxy.totals, "TOTAL raw insert"):
                raw_insert(raw, snapshot_table(sync))
            per_sync.append(proxy.totals)
        final: Totals = {}
        with _Timed(final, "final CHECKPOINT, merge"):
            merged.execute("CHECKPOINT")
        with _Timed(final, "final CHECKPOINT, raw"):
            raw.execute("CHECKPOINT")
        merged.close()
        raw.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return _table(per_sync, final, rows)


def _table(per_sync: list[Totals], final: Totals, rows: int) -> str:
    for totals in per_sync:
        calls = [v for label, v in totals.items() if not label.startswith("TOTAL")]
        merge = totals["TOTAL merge"]
        totals["Python (Polars)"] = [merge[0] - sum(v[0] for v in calls), merge[1] - sum(v[1] for v in calls)]
    labels = sorted(
        {label for totals in per_sync for label in totals}, key=lambda s: (s.startswith("TOTAL"), s)
    )
    head = " | ".join(f"sync {i}" for i in range(len(per_sync)))
    lines = [
        f"{rows // STATES:,} jobs per sync, wall / CPU seconds:",
        "",
        f"| statement | {head} |",
        "|---|" + "---:|" * len(per_sync),
    ]
    for label in labels:
        cells = " | ".join(f"{t[label][0]:.2f} / {t[label][1]:.2f}" if label in t else "" for t in per_sync)
        lines.append(f"| {label} | {cells} |")
    lines.append("")
    lines += [f"{label}: {v[0]:.2f} / {v[1]:.2f}" for label, v in final.items()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="job_snapshots to ingest (multiple of 4)")
    print(profile(parser.parse_args().rows))


if __name__ == "__main__":
    main()
