"""Remaining-time estimates of the jobs running right now, with the analytics' ETA.

The estimate is `jobs_pipeline.analytics.eta`'s, applied to live jobs: the job's own progress
(elapsed * (100 - p) / p, trusted from 5 % and fully from 50 %) blended with the type's median
remaining life given the elapsed time, read from a Kaplan-Meier curve of the archive's last 7
days. Without an archive there is no curve and the blend gives the progress estimate alone
(elapsed / progress); below 5 % progress there is then no estimate at all (shown as unknown).

The curves are read once, when the dashboard starts (they move slowly: a week of history).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl

from jobs_pipeline.analytics.conventions import BASELINE_DAYS
from jobs_pipeline.analytics.eta import blend, history_remaining
from jobs_pipeline.api.models import Job


@dataclass(frozen=True, slots=True)
class Estimate:
    elapsed_s: float | None
    remaining_s: float | None
    source: str  # "progress", "history", "blend", or "" when unknown


def load_history_curves(db_path: str | os.PathLike[str], tenant: str) -> pl.DataFrame | None:
    """Kaplan-Meier run-time curves per job type from the archive's last BASELINE_DAYS, or None.

    None when the archive has not been published yet or holds nothing for the tenant. Reads the
    published copy (never blocks a sync).
    """
    from jobs_pipeline.analytics.compute import running_eta_window
    from jobs_pipeline.analytics.prepare import naive_utc, prepare_jobs
    from jobs_pipeline.analytics.survival import trailing_curves
    from jobs_pipeline.archive import ArchiveNotFoundError, open_for_analysis
    from jobs_pipeline.stats_store import latest_observation, read_jobs

    if not Path(db_path).exists():
        return None
    try:
        conn = open_for_analysis(db_path)
    except ArchiveNotFoundError:
        return None
    with conn:
        as_of = latest_observation(conn, tenant)
        if as_of is None:
            return None
        start, end = running_eta_window(as_of)
        jobs = prepare_jobs(read_jobs(conn, tenant, start, end, as_of), as_of)
    curves = trailing_curves(jobs, [naive_utc(as_of)], BASELINE_DAYS)
    if curves.is_empty():
        return None
    return curves.select("job_type", "time_s", "survival")


def estimate(jobs: Sequence[Job], now: datetime, curves: pl.DataFrame | None) -> dict[str, Estimate]:
    """Estimate per running job id at `now` (server clock). Jobs without startedAt get no estimate."""
    if not jobs:
        return {}
    queries = pl.DataFrame(
        {
            "job_id": [job.id for job in jobs],
            "job_type": [job.type for job in jobs],
            "elapsed_s": [(now - job.started_at).total_seconds() if job.started_at else None for job in jobs],
            "progress": [float(job.progress) if job.progress is not None else None for job in jobs],
        },
        schema={"job_id": pl.String, "job_type": pl.String, "elapsed_s": pl.Float64, "progress": pl.Float64},
    ).with_columns(pl.col("elapsed_s").clip(lower_bound=0.0))
    if curves is not None:
        with_history = history_remaining(queries, curves, ["job_type"])
    else:
        with_history = queries.with_columns(history_remaining_s=pl.lit(None, dtype=pl.Float64))
    parts = blend(pl.col("elapsed_s"), pl.col("progress"), pl.col("history_remaining_s"))
    rows = with_history.with_columns(**parts).iter_rows(named=True)
    return {row["job_id"]: _estimate(row) for row in rows}


def _estimate(row: dict[str, object]) -> Estimate:
    elapsed = row["elapsed_s"]
    remaining = row["remaining_s"]
    weight = row["progress_weight"]
    if remaining is None or not isinstance(weight, float):
        source = ""
    elif weight >= 1.0:
        source = "progress"
    elif weight <= 0.0:
        source = "history"
    else:
        source = "blend"
    return Estimate(
        elapsed if isinstance(elapsed, float) else None,
        remaining if isinstance(remaining, float) else None,
        source,
    )
