"""Turn archive rows into one analysable frame: UTC-naive timestamps plus derived durations.

Every other module reads the columns made here, so the rules that decide what a duration *is*
live in one place:

- `run_time_s`   completed_at - started_at, for DONE and ERROR jobs that have both stamps.
- `queue_wait_s` started_at - created_at, for every job that started (whatever its outcome).
- `end_to_end_s` completed_at - created_at, for DONE and ERROR jobs.
- `run_end`      where the *known* part of a run stops: completion for DONE/ERROR, vanished_at for
                 KILLED, `as_of` for a job still running and observable, its last sighting for an
                 active job the API can no longer show (older than 24 h, or vanished but not
                 killed). Never after `as_of`.
- `elapsed_s`    run_end - started_at: what the run has cost so far (cost, in-flight, censoring).
- `end_kind`     why the run ended where it did: done | error | killed | running | lost.

Negative durations (clock skew in the source) are treated as unknown (null), never as zero.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from jobs_pipeline.analytics.conventions import (
    ACTIVE_STATUSES,
    DONE,
    ERROR,
    IN_PROGRESS,
    KILLED,
    OBSERVABLE_HOURS,
)

TIMESTAMP_COLUMNS: tuple[str, ...] = (
    "created_at",
    "started_at",
    "completed_at",
    "updated_at",
    "last_seen_at",
    "vanished_at",
)
# The columns of the archive's `jobs` table the statistics read (metadata is optional).
JOB_INPUT_COLUMNS: tuple[str, ...] = (
    "tenant",
    "job_id",
    "target_id",
    "job_type",
    "status",
    "progress",
    *TIMESTAMP_COLUMNS,
)
UTC_NAIVE = pl.Datetime("us")


def naive_utc(value: datetime) -> datetime:
    """A Python datetime as naive UTC (naive input is taken to be UTC already)."""
    if value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def to_naive_utc(frame: pl.DataFrame, columns: tuple[str, ...] | list[str]) -> pl.DataFrame:
    """Cast timestamp columns to naive UTC microseconds (the frames' single time representation)."""
    casts = []
    for name in columns:
        if name not in frame.columns:
            continue
        dtype = frame.schema[name]
        expr = pl.col(name)
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
            expr = expr.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        casts.append(expr.cast(UTC_NAIVE).alias(name))
    return frame.with_columns(casts) if casts else frame


def seconds_between(start: pl.Expr, end: pl.Expr) -> pl.Expr:
    """end - start in float seconds (microsecond exact), null when negative or unknown."""
    seconds = (end - start).dt.total_microseconds() / 1_000_000
    return pl.when(seconds >= 0).then(seconds)


def prepare_jobs(jobs: pl.DataFrame, as_of: datetime) -> pl.DataFrame:
    """Normalise an archive `jobs` frame and add the derived columns described in the module doc."""
    as_of_naive = naive_utc(as_of)
    frame = to_naive_utc(jobs, TIMESTAMP_COLUMNS)
    if "metadata" not in frame.columns:
        frame = frame.with_columns(metadata=pl.lit(None, dtype=pl.String))
    as_of_lit = pl.lit(as_of_naive, dtype=UTC_NAIVE)
    status = pl.col("status")
    is_active = status.is_in(ACTIVE_STATUSES)
    observable = (
        is_active
        & pl.col("vanished_at").is_null()
        & (pl.col("created_at") >= as_of_lit - timedelta(hours=OBSERVABLE_HOURS))
    )
    finished = status.is_in((DONE, ERROR))
    raw_end = (
        pl.when(finished)
        .then(pl.coalesce("completed_at", "updated_at"))
        .when(status == KILLED)
        .then(pl.coalesce("vanished_at", "last_seen_at"))
        .when(observable)
        .then(as_of_lit)
        .when(is_active)
        .then(pl.coalesce("last_seen_at", "updated_at"))
        .otherwise(pl.coalesce("completed_at", "last_seen_at", "updated_at"))
    )
    end_kind = (
        pl.when(status == DONE)
        .then(pl.lit("done"))
        .when(status == ERROR)
        .then(pl.lit("error"))
        .when(status == KILLED)
        .then(pl.lit("killed"))
        .when(observable)
        .then(pl.lit("running"))
        .otherwise(pl.lit("lost"))
    )
    frame = frame.with_columns(
        finished_at=pl.when(finished | (status == KILLED)).then(raw_end),
        run_end=pl.when(pl.col("started_at").is_not_null()).then(pl.min_horizontal(raw_end, as_of_lit)),
        end_kind=end_kind,
        is_running=observable & (status == IN_PROGRESS) & pl.col("started_at").is_not_null(),
    )
    return frame.with_columns(
        run_time_s=pl.when(finished).then(seconds_between(pl.col("started_at"), pl.col("completed_at"))),
        queue_wait_s=seconds_between(pl.col("created_at"), pl.col("started_at")),
        end_to_end_s=pl.when(finished).then(seconds_between(pl.col("created_at"), pl.col("completed_at"))),
        elapsed_s=seconds_between(pl.col("started_at"), pl.col("run_end")),
    )


KEY_COLUMNS: tuple[str, ...] = ("tenant", "job_type")


def pick(frame: pl.DataFrame, predicate: pl.Expr, *columns: str | pl.Expr) -> pl.DataFrame:
    """The rows matching `predicate`, with only `columns`.

    Projected before filtering: an eager filter would copy every column of a wide frame first
    (at millions of jobs, that copy is most of a step's memory).
    """
    return frame.lazy().filter(predicate).select(*columns).collect()


def with_categorical_keys(frame: pl.DataFrame) -> pl.DataFrame:
    """tenant and job_type as Categorical: hashing and grouping on them gets several times cheaper.

    Only for frames that stay inside one computation: every public analytics function accepts
    either representation and returns String keys (`with_string_keys`).
    """
    present = [c for c in KEY_COLUMNS if c in frame.columns]
    return frame.with_columns(pl.col(present).cast(pl.Categorical))


def with_string_keys(frame: pl.DataFrame) -> pl.DataFrame:
    present = [c for c in KEY_COLUMNS if c in frame.columns]
    return frame.with_columns(pl.col(present).cast(pl.String))
