"""How much of each bucket the archive provably saw, from the gaps the syncs recorded.

A sync that could not see part of a slice records it in `sync_runs.gaps` as a createdAt range
(see capture/types.Gap). Which of those ranges are still unseen now:
- a `cap` gap of the DONE or ERROR slice: never (the planner does not revisit it: finished jobs only
  sink deeper, no later query reaches them);
- any other gap of the tenant's *latest* sync: still open (the next sync will look again);
- any other gap of an earlier sync: the next sync revisited its range and recorded as its own gap
  whatever it still could not see, so the older record is superseded.
`known-active` gaps are about status updates of jobs already archived (not missing jobs) and do not
count. Open bounds stand for the API's 24 h window before the sync (older) and the sync (newer).
Jobs created before the API's 24 h window at the tenant's *first* sync were never observable: that
range is unseen too (slice 'ALL', reason 'before-archive'; not status-selective), so the archive's
first, partly covered bucket reads as partial, not as a dip. Buckets are judged up to `as_of`: the
current one over its elapsed part, later ones not at all.

A gap of one status slice is *status-selective*: the jobs of that status were missed while the
others were read whole (the demo's first sync: most DONE jobs past the cap, the short ERROR list
read completely), so every rate, mix and duration of the bucket is biased, not just its counts.
Gaps of the whole list (`ALL`, `*`) or of a target lose jobs of every status alike: counts are
low, rates are not biased by status.

Per owned bucket of every grain (job_type '*': gaps are not per type) this module gives the
share of its window seen and a flag, `coverage`: 'complete', 'partial' (jobs of every status
missing) or 'status_selective'. Trends, alerts and anomaly checks leave out 'status_selective'
buckets (see anomalies.failure_spikes). The ranges are createdAt ranges; a job is bucketed by its
end (completion) for rates and durations, which for runs of minutes falls in the same bucket.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import polars as pl

from jobs_pipeline.analytics.buckets import BUCKET_KEYS, Scope
from jobs_pipeline.analytics.conventions import ALL_TYPES, DONE, ERROR, OBSERVABLE_HOURS

COMPLETE = "complete"
PARTIAL = "partial"
STATUS_SELECTIVE = "status_selective"

# Slices whose gaps miss jobs of one status only (those statuses are sliced by the planner).
STATUS_SLICES: frozenset[str] = frozenset({"PENDING", "IN_PROGRESS", DONE, ERROR})
_NEVER_REVISITED: frozenset[str] = frozenset({DONE, ERROR})
_NOT_MISSING_JOBS: frozenset[str] = frozenset({"known-active"})
BEFORE_ARCHIVE = "before-archive"

GAP_COLUMNS: dict[str, pl.DataType] = {
    "tenant": pl.String(),
    "sync_id": pl.String(),
    "observed_at": pl.Datetime("us"),
    "is_latest": pl.Boolean(),
    "slice": pl.String(),
    "reason": pl.String(),
    "created_from": pl.Datetime("us"),
    "created_to": pl.Datetime("us"),
}

UNSEEN_COLUMNS: dict[str, pl.DataType] = {
    "tenant": pl.String(),
    "slice": pl.String(),
    "reason": pl.String(),
    "status_selective": pl.Boolean(),
    "start": pl.Datetime("us"),
    "end": pl.Datetime("us"),
}


COVERAGE_SCHEMA: dict[str, pl.DataType] = {
    "bucket_grain": pl.String(),
    "bucket_start": pl.Datetime("us"),
    "tenant": pl.String(),
    "job_type": pl.String(),
    "window_s": pl.Float64(),
    "unseen_s": pl.Float64(),
    "status_selective_unseen_s": pl.Float64(),
    "seen_share": pl.Float64(),
    "coverage": pl.String(),
    "gap_slices": pl.String(),
}


def empty_coverage() -> pl.DataFrame:
    return pl.DataFrame(schema=COVERAGE_SCHEMA)


def unseen_ranges(gaps: pl.DataFrame) -> pl.DataFrame:
    """The createdAt ranges still unseen, from every recorded gap (GAP_COLUMNS; naive UTC)."""
    if gaps.is_empty():
        return pl.DataFrame(schema=UNSEEN_COLUMNS)
    window = pl.duration(hours=OBSERVABLE_HOURS)
    permanent = (pl.col("reason") == "cap") & pl.col("slice").is_in(list(_NEVER_REVISITED))
    return (
        gaps.filter(~pl.col("slice").is_in(list(_NOT_MISSING_JOBS)) & (permanent | pl.col("is_latest")))
        .select(
            "tenant",
            "slice",
            "reason",
            status_selective=pl.col("slice").is_in(list(STATUS_SLICES)),
            start=pl.col("created_from").fill_null(pl.col("observed_at") - window),
            # Inclusive bounds in the gap; the range covers the whole last instant's microsecond.
            end=pl.col("created_to").fill_null(pl.col("observed_at")) + pl.duration(microseconds=1),
        )
        .filter(pl.col("end") > pl.col("start"))
        .cast(UNSEEN_COLUMNS)  # type: ignore[arg-type]
    )


def _merge(ranges: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[list[datetime]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(a, b) for a, b in merged]


def _overlap_s(ranges: list[tuple[datetime, datetime]], start: datetime, end: datetime) -> float:
    total = timedelta()
    for a, b in ranges:
        if a < end and b > start:
            total += min(b, end) - max(a, start)
    return total.total_seconds()


def bucket_coverage(
    unseen: pl.DataFrame, scope: Scope, tenants: Iterable[str], as_of: datetime
) -> pl.DataFrame:
    """stats_coverage rows: every owned bucket of each tenant that began before `as_of` (naive UTC),
    with the share of its window (up to as_of) seen."""
    parts = [_tenant_coverage(unseen, scope, t, as_of) for t in sorted(set(tenants))]
    return pl.concat(parts) if parts else empty_coverage()


def _tenant_coverage(unseen: pl.DataFrame, scope: Scope, tenant: str, as_of: datetime) -> pl.DataFrame:
    mine = unseen.filter(pl.col("tenant") == tenant)
    every = _merge(mine.select("start", "end").iter_rows())
    selective = _merge(mine.filter(pl.col("status_selective")).select("start", "end").iter_rows())
    rows = []
    for grain, start, bucket_end in scope.buckets.select(
        "bucket_grain", "bucket_start", "bucket_end"
    ).iter_rows():
        if start >= as_of:
            continue
        end = min(bucket_end, as_of)
        window_s = (end - start).total_seconds()
        unseen_s = _overlap_s(every, start, end)
        selective_s = _overlap_s(selective, start, end)
        reasons = sorted(
            {
                f"{s} {r}"
                for s, r, a, b in mine.select("slice", "reason", "start", "end").iter_rows()
                if a < end and b > start
            }
        )
        flag = STATUS_SELECTIVE if selective_s > 0 else PARTIAL if unseen_s > 0 else COMPLETE
        rows.append(
            {
                "bucket_grain": grain,
                "bucket_start": start,
                "tenant": tenant,
                "job_type": ALL_TYPES,
                "window_s": window_s,
                "unseen_s": unseen_s,
                "status_selective_unseen_s": selective_s,
                "seen_share": 1.0 - unseen_s / window_s,
                "coverage": flag,
                "gap_slices": ", ".join(reasons) or None,
            }
        )
    return pl.DataFrame(rows, schema=COVERAGE_SCHEMA, orient="row").sort(BUCKET_KEYS)


def with_coverage(frame: pl.DataFrame, coverage: pl.DataFrame) -> pl.DataFrame:
    """`frame` (bucket keys) with the `coverage` flag of its bucket ('complete' when unknown)."""
    keys = ["bucket_grain", "bucket_start", "tenant"]
    flags = coverage.select(*keys, "coverage")
    if frame.is_empty():
        return frame.with_columns(coverage=pl.lit(None, pl.String))
    joined = frame.join(flags, on=keys, how="left")
    return joined.with_columns(pl.col("coverage").fill_null(COMPLETE))


def selective_hours(unseen: pl.DataFrame) -> pl.DataFrame:
    """(tenant, hour) of every hour a status-selective unseen range touches: out of every baseline."""
    rows: set[tuple[str, datetime]] = set()
    for tenant, start, end in (
        unseen.filter(pl.col("status_selective")).select("tenant", "start", "end").iter_rows()
    ):
        hour = start.replace(minute=0, second=0, microsecond=0)
        while hour < end:
            rows.add((tenant, hour))
            hour += timedelta(hours=1)
    return pl.DataFrame(sorted(rows), schema={"tenant": pl.String, "hour": pl.Datetime("us")}, orient="row")
