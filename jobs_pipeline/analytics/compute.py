"""All the statistics tables of one scope, from archive frames (pure: frames in, frames out).

The caller (stats_store) reads the rows `read_window` asks for; every figure of an owned bucket
depends only on those rows and `as_of`, so recomputing one day gives the same rows as a full
recompute with the same as_of.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from jobs_pipeline.analytics.anomalies import failure_spikes, slow_jobs
from jobs_pipeline.analytics.buckets import Scope
from jobs_pipeline.analytics.conventions import BASELINE_DAYS
from jobs_pipeline.analytics.coverage import (
    GAP_COLUMNS,
    bucket_coverage,
    selective_hours,
    unseen_ranges,
    with_coverage,
)
from jobs_pipeline.analytics.durations import duration_stats
from jobs_pipeline.analytics.eta import eta_backtest, running_eta
from jobs_pipeline.analytics.failures import failure_rates
from jobs_pipeline.analytics.in_flight import in_flight
from jobs_pipeline.analytics.mix import type_mix
from jobs_pipeline.analytics.prepare import naive_utc, prepare_jobs, with_categorical_keys
from jobs_pipeline.analytics.schema import (
    STATS_COVERAGE,
    STATS_DURATIONS,
    STATS_ETA_BACKTEST,
    STATS_FAILURE_RATES,
    STATS_FAILURE_SPIKES,
    STATS_IN_FLIGHT,
    STATS_RUNNING_ETA,
    STATS_SLOW_JOBS,
    STATS_SPEED,
    STATS_SURVIVAL,
    STATS_THROUGHPUT,
    STATS_TYPE_MIX,
    conform,
)
from jobs_pipeline.analytics.speed import size_speed
from jobs_pipeline.analytics.survival import survival_stats, trailing_curves
from jobs_pipeline.analytics.throughput import throughput


def read_window(scope: Scope) -> tuple[datetime, datetime]:
    """[start, end) of the jobs a scope needs: its buckets plus the trailing baseline before them.

    A job is needed when its life [created_at, end) overlaps the window (end = completion, kill, or
    as_of while active): that covers every bucketing timestamp and every interval crossing it.
    """
    return scope.start - timedelta(days=BASELINE_DAYS), scope.end


def running_eta_window(as_of: datetime) -> tuple[datetime, datetime]:
    """[start, end) of the jobs the running-job ETA needs (its trailing history, and what runs)."""
    as_of_naive = naive_utc(as_of)
    return as_of_naive - timedelta(days=BASELINE_DAYS), as_of_naive + timedelta(microseconds=1)


def compute_statistics(
    jobs: pl.DataFrame,
    snapshots: pl.DataFrame,
    scope: Scope,
    as_of: datetime,
    gaps: pl.DataFrame | None = None,
) -> dict[str, pl.DataFrame]:
    """Every bucketed/daily statistics table of `scope`, conformed to its schema, keyed by table name.

    `jobs`: archive jobs rows covering `read_window(scope)`; `snapshots`: the IN_PROGRESS
    job_snapshots rows (job_id, observed_at, progress; tenant/status honoured when present) of the
    jobs completed in the scope's window, as `stats_store.read_snapshots` gives them; `gaps`: the
    gaps the tenant's syncs recorded (coverage.GAP_COLUMNS, `stats_store.read_gaps`), none = all seen.
    """
    prepared = with_categorical_keys(prepare_jobs(jobs, as_of))
    flight = in_flight(prepared, scope, as_of)
    unseen = unseen_ranges(gaps if gaps is not None else pl.DataFrame(schema=GAP_COLUMNS))
    tenants = set(jobs["tenant"].unique().to_list()) | set(unseen["tenant"].unique().to_list())
    coverage = bucket_coverage(unseen, scope, tenants, naive_utc(as_of))
    spikes = failure_spikes(prepared, scope, coverage, selective_hours(unseen))
    frames = {
        STATS_DURATIONS.name: (duration_stats(prepared, scope), STATS_DURATIONS),
        STATS_FAILURE_RATES.name: (
            with_coverage(failure_rates(prepared, scope), coverage),
            STATS_FAILURE_RATES,
        ),
        STATS_TYPE_MIX.name: (with_coverage(type_mix(prepared, scope), coverage), STATS_TYPE_MIX),
        STATS_IN_FLIGHT.name: (flight, STATS_IN_FLIGHT),
        STATS_THROUGHPUT.name: (throughput(prepared, flight, scope, as_of), STATS_THROUGHPUT),
        STATS_SURVIVAL.name: (survival_stats(prepared, scope), STATS_SURVIVAL),
        STATS_SPEED.name: (size_speed(prepared, scope), STATS_SPEED),
        STATS_FAILURE_SPIKES.name: (spikes, STATS_FAILURE_SPIKES),
        STATS_COVERAGE.name: (coverage, STATS_COVERAGE),
        STATS_ETA_BACKTEST.name: (eta_backtest(snapshots, prepared, scope), STATS_ETA_BACKTEST),
        STATS_SLOW_JOBS.name: (slow_jobs(prepared, scope), STATS_SLOW_JOBS),
    }
    return {name: conform(frame, spec) for name, (frame, spec) in frames.items()}


def compute_running_eta(jobs: pl.DataFrame, as_of: datetime) -> pl.DataFrame:
    """stats_running_eta for `as_of` from jobs covering `running_eta_window(as_of)`."""
    prepared = with_categorical_keys(prepare_jobs(jobs, as_of))
    history = trailing_curves(prepared, [naive_utc(as_of)], BASELINE_DAYS)
    return conform(running_eta(prepared, history, as_of), STATS_RUNNING_ETA)
