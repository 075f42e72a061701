"""Coverage-aware statistics: a status-selective gap never becomes a spike, a trend or an alert.

The situation is the demo's: five days of ~312 jobs a day failing at 5 %; on one day a sync's DONE
slice hit the offset cap, so most DONE jobs created over most of the day were never seen while the
short ERROR list was read whole (gap `DONE cap` in sync_runs.gaps). The demo's gap is on its first
day, which has no baseline; here it is on the second so that, uncorrected, it trips the spike check.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import duckdb
import polars as pl
import pytest

from jobs_pipeline.analytics.buckets import Scope
from jobs_pipeline.analytics.coverage import (
    GAP_COLUMNS,
    STATUS_SELECTIVE,
    bucket_coverage,
    unseen_ranges,
)
from jobs_pipeline.defs.statistics import spike_result
from jobs_pipeline.report import build_report
from jobs_pipeline.stats_store import read_gaps, refresh_statistics
from jobs_pipeline_tests.test_analytics_fixtures import Archive, fresh_connection, insert_sync_run, job_row

DAY0 = datetime(2024, 10, 7)  # naive UTC
GAP_DAY = DAY0 + timedelta(days=1)
GAP_FROM, GAP_TO = GAP_DAY.replace(hour=2, minute=38), GAP_DAY.replace(hour=21, minute=53)
AS_OF = DAY0 + timedelta(days=4, hours=23)


def _archive() -> Archive:
    archive = Archive()
    for i in range(5 * 312):
        created = DAY0 + timedelta(seconds=i * 86_400 // 312)
        if created >= AS_OF - timedelta(minutes=5):
            break
        status = "ERROR" if i % 20 == 0 else "DONE"  # 5 %
        if status == "DONE" and GAP_FROM <= created <= GAP_TO and i % 50:
            continue  # past the DONE slice's cap: 49 in 50 never seen
        job_type = ("EXTRACTION", "TRANSCRIPTION", "EMBEDDING")[i % 3]
        started = created + timedelta(seconds=5)
        archive.jobs.append(
            job_row(
                f"j{i:05d}",
                job_type,
                status,
                created,
                started_at=started,
                completed_at=started + timedelta(seconds=40),
            )
        )
    return archive


def _record_syncs(conn: duckdb.DuckDBPyConnection, *, with_gap: bool) -> None:
    """A first sync that sees day 0 whole, the sync that hit the cap (or pretends it saw all), then
    complete ones every 6 h."""
    insert_sync_run(conn, "acme", "s000", DAY0 + timedelta(days=1))
    insert_sync_run(conn, "acme", "s001", GAP_DAY + timedelta(days=1))
    if with_gap:
        gap = {
            "slice": "DONE",
            "reason": "cap",
            "created_from": GAP_FROM.isoformat() + "+00:00",
            "created_to": GAP_TO.isoformat() + "+00:00",
        }
        conn.execute(
            "UPDATE hot.sync_runs SET coverage_complete = false, gaps = ? WHERE sync_id = 's001'",
            [json.dumps([gap])],
        )
    for n in range(2, 12):
        insert_sync_run(conn, "acme", f"s{n:03d}", GAP_DAY + timedelta(days=1, hours=6 * n))


def _refreshed(*, with_gap: bool) -> duckdb.DuckDBPyConnection:
    conn = fresh_connection(_archive())
    _record_syncs(conn, with_gap=with_gap)
    refresh_statistics(conn, as_of=AS_OF)
    return conn


def _day_rate(conn: duckdb.DuckDBPyConnection) -> tuple[float, str]:
    return conn.sql(
        "SELECT failure_rate, coverage FROM stats_failure_rates WHERE bucket_grain = 'day' "
        "AND job_type = '*' AND bucket_start = TIMESTAMPTZ '2024-10-08 00:00:00+00'"
    ).fetchall()[0]


def _spikes_on_gap_day(conn: duckdb.DuckDBPyConnection) -> int:
    return conn.sql(
        "SELECT count(*) FROM failure_spikes WHERE bucket_grain IN ('hour', 'day') "
        "AND CAST(timezone('UTC', bucket_start) AS DATE) = DATE '2024-10-08'"
    ).fetchall()[0][0]


def test_without_the_recorded_gap_the_biased_day_spikes() -> None:
    """The control: the same rows with a sync that claims it saw all -> spurious spikes (what main did)."""
    conn = _refreshed(with_gap=False)
    rate, coverage = _day_rate(conn)
    assert rate > 0.07 and coverage == "complete"
    assert _spikes_on_gap_day(conn) > 0
    assert not spike_result(conn, [date(2024, 10, 8)]).passed


def test_status_selective_gap_is_flagged_and_reaches_no_alert() -> None:
    conn = _refreshed(with_gap=True)
    rate, coverage = _day_rate(conn)
    assert rate > 0.07  # the biased figure is kept (it is what was seen) ...
    assert coverage == STATUS_SELECTIVE  # ... and marked
    seen = conn.sql(
        "SELECT seen_share, gap_slices FROM stats_coverage WHERE bucket_grain = 'day' "
        "AND bucket_start = TIMESTAMPTZ '2024-10-08 00:00:00+00'"
    ).fetchall()[0]
    assert seen[0] == pytest.approx(1 - (GAP_TO - GAP_FROM).total_seconds() / 86_400, abs=1e-6)
    assert seen[1] == "DONE cap"
    # Hours before the gap are complete; the other days too.
    flags = dict(
        conn.sql(
            "SELECT strftime(timezone('UTC', bucket_start), '%Y-%m-%d %H'), coverage FROM stats_coverage "
            "WHERE bucket_grain IN ('hour', 'day')"
        ).fetchall()
    )
    assert flags["2024-10-08 01"] == "complete" and flags["2024-10-08 02"] == STATUS_SELECTIVE
    assert flags["2024-10-08 22"] == "complete" and flags["2024-10-07 00"] == "complete"
    assert flags["2024-10-09 00"] == "complete"
    assert _spikes_on_gap_day(conn) == 0
    assert conn.sql("SELECT count(*) FROM failure_spikes").fetchall()[0][0] == 0
    assert spike_result(conn, [date(2024, 10, 7), date(2024, 10, 11)]).passed
    assert conn.sql(
        "SELECT z_score IS NULL AND NOT is_spike FROM stats_failure_spikes WHERE bucket_grain = 'day' "
        "AND job_type = '*' AND bucket_start = TIMESTAMPTZ '2024-10-08 00:00:00+00'"
    ).fetchall() == [(True,)]
    # The biased hours are out of the next day's baseline: its baseline rate is the true 5 %.
    baseline = conn.sql(
        "SELECT baseline_rate FROM stats_failure_spikes WHERE bucket_grain = 'day' AND job_type = '*' "
        "AND bucket_start = TIMESTAMPTZ '2024-10-09 00:00:00+00'"
    ).fetchall()[0][0]
    assert baseline == pytest.approx(0.05, abs=0.01)


def test_report_hatches_the_partial_day_and_leaves_its_rate_out() -> None:
    conn = _refreshed(with_gap=True)
    html = build_report(conn, days=7, generated_at=AS_OF)
    assert "Hatched: 1 day(s) (2024-10-08)" in html
    # The header says where the data really start, not the 7-day window's start.
    assert "data from 2024-10-07 00:00" in html
    control = build_report(_refreshed(with_gap=False), days=7, generated_at=AS_OF)
    assert "Hatched: 1 day(s)" not in control


def test_superseded_and_known_active_gaps_do_not_count() -> None:
    at = datetime(2024, 10, 8, 12)
    gaps = pl.DataFrame(
        [
            # An ERROR cap gap of an old sync: never revisited, still unseen.
            (
                "t",
                "s1",
                at - timedelta(hours=6),
                False,
                "ERROR",
                "cap",
                at - timedelta(hours=10),
                at - timedelta(hours=9),
            ),
            # A drift gap of an old sync: the next sync looked again (superseded).
            (
                "t",
                "s1",
                at - timedelta(hours=6),
                False,
                "ALL",
                "drift",
                at - timedelta(hours=8),
                at - timedelta(hours=7),
            ),
            # The latest sync's budget gap with open bounds: its whole 24 h window.
            ("t", "s2", at, True, "*", "budget", None, None),
            ("t", "s2", at, True, "known-active", "unresolved", None, None),
        ],
        schema=GAP_COLUMNS,
        orient="row",
    )
    unseen = unseen_ranges(gaps)
    assert sorted(unseen["reason"].to_list()) == ["budget", "cap"]
    coverage = bucket_coverage(unseen, Scope.for_days([at.date()]), ["t"], at + timedelta(hours=6))
    hours = {r["bucket_start"].hour: r for r in coverage.filter(pl.col("bucket_grain") == "hour").to_dicts()}
    assert hours[2]["coverage"] == STATUS_SELECTIVE  # the ERROR cap gap (02:00-03:00)
    assert hours[4]["coverage"] == "partial"  # the budget gap covers everything; not status-selective
    assert hours[13]["coverage"] == "complete"  # after the latest sync
    assert hours[4]["seen_share"] == pytest.approx(0.0, abs=1e-6)
    assert max(hours) == 17  # buckets after as_of are not judged; the current one up to as_of
    assert hours[17]["window_s"] == pytest.approx(3600.0)


def test_read_gaps_parses_what_the_archive_stores() -> None:
    conn = _refreshed(with_gap=True)
    gaps = read_gaps(conn, "acme").sort("observed_at", "reason")
    assert gaps.select("slice", "reason", "created_from", "created_to", "is_latest").rows() == [
        # Older than the API's window at the first sync: never observable.
        ("ALL", "before-archive", datetime(1970, 1, 1), DAY0 - timedelta(microseconds=1), True),
        ("DONE", "cap", GAP_FROM, GAP_TO, False),
    ]


def test_the_first_bucket_before_the_archive_reach_is_partial_not_a_dip() -> None:
    conn = fresh_connection(_archive())
    insert_sync_run(conn, "acme", "s000", DAY0 + timedelta(hours=30))  # its window starts at 06:00
    refresh_statistics(conn, as_of=DAY0 + timedelta(hours=30))
    rows = dict(
        conn.sql(
            "SELECT bucket_start::DATE, (seen_share, coverage) FROM stats_coverage WHERE bucket_grain = 'day'"
        ).fetchall()
    )
    assert rows[date(2024, 10, 7)] == (pytest.approx(0.75), "partial")
    assert rows[date(2024, 10, 8)] == (1.0, "complete")
    assert date(2024, 10, 9) not in rows  # after as_of
