"""Time buckets (hour, day, ISO week; UTC) and the scope of one refresh.

A refresh recomputes whole days. For each day D it owns D's 24 hour buckets, D's day bucket and
the week bucket containing D (recomputed from all seven of its days, which are read for it).
Rows are assigned to buckets with `dt.truncate` + `group_by` (not `group_by_dynamic`: slower at
scale and it would invent empty windows).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import polars as pl

from jobs_pipeline.analytics.conventions import ALL_TYPES, GRAIN_EVERY, GRAINS
from jobs_pipeline.analytics.prepare import UTC_NAIVE, with_string_keys

BUCKET_KEYS: tuple[str, ...] = ("bucket_grain", "bucket_start", "tenant", "job_type")
GRAIN_LENGTH: dict[str, timedelta] = {
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(days=7),
}


def truncate(expr: pl.Expr, grain: str) -> pl.Expr:
    """The start of the `grain` bucket holding each timestamp (weeks start on Monday)."""
    return expr.dt.truncate(GRAIN_EVERY[grain])


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day)


@dataclass(frozen=True)
class Scope:
    """The buckets a refresh owns. `buckets` has bucket_grain, bucket_start, bucket_end."""

    days: tuple[date, ...]
    buckets: pl.DataFrame

    @classmethod
    def for_days(cls, days: Iterable[date]) -> Scope:
        unique_days = tuple(sorted(set(days)))
        if not unique_days:
            raise ValueError("a scope needs at least one day")
        rows: list[tuple[str, datetime]] = []
        for day in unique_days:
            start = day_start(day)
            rows.extend(("hour", start + timedelta(hours=h)) for h in range(24))
            rows.append(("day", start))
        rows.extend(("week", day_start(w)) for w in sorted({week_start(d) for d in unique_days}))
        buckets = pl.DataFrame(
            {"bucket_grain": [r[0] for r in rows], "bucket_start": [r[1] for r in rows]},
            schema={"bucket_grain": pl.String, "bucket_start": UTC_NAIVE},
        ).with_columns(bucket_end=bucket_end(pl.col("bucket_start"), pl.col("bucket_grain")))
        return cls(days=unique_days, buckets=buckets)

    @classmethod
    def whole_weeks(cls, first: date, last: date) -> Scope:
        """Every day of every ISO week from `first`'s to `last`'s: what a full recompute owns."""
        start = week_start(first)
        end = week_start(last) + timedelta(days=7)
        return cls.for_days(start + timedelta(days=i) for i in range((end - start).days))

    @property
    def start(self) -> datetime:
        """The earliest instant any owned bucket covers (the first week's Monday)."""
        value = self.buckets["bucket_start"].min()
        assert isinstance(value, datetime)
        return value

    @property
    def end(self) -> datetime:
        """The end (exclusive) of the latest owned bucket."""
        value = self.buckets["bucket_end"].max()
        assert isinstance(value, datetime)
        return value

    @property
    def day_starts(self) -> list[datetime]:
        return [day_start(d) for d in self.days]

    def starts(self, grain: str) -> pl.Series:
        return self.buckets.filter(pl.col("bucket_grain") == grain)["bucket_start"]

    def covers(self, grain: str) -> bool:
        """True when every `grain` bucket between start and end is owned (a plain range filter will do)."""
        expected = (self.end - self.start) // GRAIN_LENGTH[grain]
        return self.starts(grain).len() == expected


def bucket_end(start: pl.Expr, grain: pl.Expr) -> pl.Expr:
    return (
        pl.when(grain == "hour")
        .then(start.dt.offset_by("1h"))
        .when(grain == "day")
        .then(start.dt.offset_by("1d"))
        .otherwise(start.dt.offset_by("1w"))
    )


def within(column: str, start: datetime, end: datetime) -> pl.Expr:
    return (pl.col(column) >= start) & (pl.col(column) < end)


def assign_bucket(frame: pl.DataFrame, time_column: str, grain: str, scope: Scope) -> pl.DataFrame:
    """Rows of `frame` whose `time_column` falls in an owned `grain` bucket, with bucket_start added."""
    return _owned_rows(frame.filter(within(time_column, scope.start, scope.end)), time_column, grain, scope)


def _owned_rows(in_window: pl.DataFrame, time_column: str, grain: str, scope: Scope) -> pl.DataFrame:
    bucketed = in_window.with_columns(bucket_start=truncate(pl.col(time_column), grain))
    if scope.covers(grain):
        return bucketed
    return bucketed.filter(pl.col("bucket_start").is_in(scope.starts(grain).implode()))


def aggregate_by_bucket(
    frame: pl.DataFrame,
    time_column: str,
    scope: Scope,
    aggregations: Sequence[pl.Expr],
    *,
    all_types: bool = True,
) -> pl.DataFrame:
    """Aggregate per owned bucket of every grain, per job type and over all types ('*' rows,
    unless `all_types` is False).

    Returns the bucket keys (bucket_grain, bucket_start, tenant, job_type), then the aggregations'
    outputs; only buckets that hold at least one row appear.
    """
    in_window = frame.filter(within(time_column, scope.start, scope.end))
    parts: list[pl.DataFrame] = []
    for grain in GRAINS:
        bucketed = _owned_rows(in_window, time_column, grain, scope)
        parts.append(
            bucketed.group_by("tenant", "bucket_start", "job_type")
            .agg(aggregations)
            .with_columns(bucket_grain=pl.lit(grain))
        )
        if all_types:
            parts.append(
                bucketed.group_by("tenant", "bucket_start")
                .agg(aggregations)
                .with_columns(bucket_grain=pl.lit(grain), job_type=pl.lit(ALL_TYPES))
            )
    combined = pl.concat([with_string_keys(part) for part in parts], how="diagonal_relaxed")
    return combined.select(*BUCKET_KEYS, pl.exclude(BUCKET_KEYS)).sort(BUCKET_KEYS)


def restrict_to_scope(frame: pl.DataFrame, scope: Scope) -> pl.DataFrame:
    """Keep only rows whose (bucket_grain, bucket_start) the scope owns."""
    return frame.join(
        scope.buckets.select("bucket_grain", "bucket_start"), on=["bucket_grain", "bucket_start"], how="semi"
    )


def aggregate_additive(
    frame: pl.DataFrame, time_column: str, scope: Scope, aggregations: Sequence[pl.Expr]
) -> pl.DataFrame:
    """Like `aggregate_by_bucket`, for aggregations that add up (counts, sums): one pass over the rows.

    The rows are aggregated once per (hour, type); days, weeks and the '*' rows are sums of those
    hourly rows, which are few. Each aggregation must name its output and be additive.
    """
    in_window = frame.filter(within(time_column, scope.start, scope.end))
    hourly = with_string_keys(
        in_window.group_by(
            "tenant", "job_type", truncate(pl.col(time_column), "hour").alias("bucket_start")
        ).agg(aggregations)
    )
    names = [name for name in hourly.columns if name not in ("tenant", "job_type", "bucket_start")]
    hourly = hourly.sort("tenant", "job_type", "bucket_start")  # fixed summation order: reproducible sums
    parts: list[pl.DataFrame] = []
    for grain in GRAINS:
        rolled = hourly.with_columns(bucket_start=truncate(pl.col("bucket_start"), grain))
        by_type = rolled.group_by("tenant", "job_type", "bucket_start").agg(pl.col(names).sum())
        all_types = rolled.group_by("tenant", "bucket_start").agg(pl.col(names).sum())
        parts.append(by_type.with_columns(bucket_grain=pl.lit(grain)))
        parts.append(all_types.with_columns(bucket_grain=pl.lit(grain), job_type=pl.lit(ALL_TYPES)))
    combined = pl.concat(parts, how="diagonal_relaxed").select(*BUCKET_KEYS, *names)
    return restrict_to_scope(combined, scope).sort(BUCKET_KEYS)
