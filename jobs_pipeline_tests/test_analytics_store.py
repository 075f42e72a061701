"""stats_store: incremental refresh, documented schema, views, cookbook, defaults."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from jobs_pipeline import stats_store
from jobs_pipeline.analytics.buckets import Scope
from jobs_pipeline.analytics.schema import TABLES
from jobs_pipeline.stats_store import (
    VIEWS,
    days_touched_since,
    ensure_statistics_schema,
    latest_observation,
    refresh_statistics,
)
from jobs_pipeline_tests.test_analytics_fixtures import (
    BASE,
    Archive,
    assert_frames_close,
    fresh_connection,
    insert_sync_run,
    job_row,
    random_archive,
)

AS_OF = BASE + timedelta(days=23, hours=15)
DAY = (BASE + timedelta(days=16)).date()  # a Wednesday: its week is shared with other days
COOKBOOK = Path(__file__).resolve().parents[1] / "docs" / "analytics-cookbook.md"


def _archive() -> Archive:
    return random_archive(seed=5, n_jobs=3_000, days=24, as_of=AS_OF, tenants=("acme", "globex"))


def _tables(conn: duckdb.DuckDBPyConnection) -> dict[str, pl.DataFrame]:
    return {spec.name: conn.sql(f"SELECT * FROM {spec.name}").pl() for spec in TABLES}


def _owned(frame: pl.DataFrame, table: str, scope: Scope) -> pl.Series:
    """Row mask: the rows a refresh of `scope` owns in `table`."""
    spec = next(s for s in TABLES if s.name == table)
    if spec.replaced_by == "day":
        return frame["completed_day"].is_in(list(scope.days))
    if spec.replaced_by == "tenant":
        return pl.Series([True] * frame.height, dtype=pl.Boolean)
    keys = scope.buckets.select(
        "bucket_grain", pl.col("bucket_start").dt.replace_time_zone("UTC")
    ).with_columns(_owned=pl.lit(True))
    joined = frame.select("bucket_grain", "bucket_start").join(
        keys, on=["bucket_grain", "bucket_start"], how="left", maintain_order="left"
    )
    return joined["_owned"].fill_null(False)


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(frame.columns, nulls_last=True)


def _late_jobs_on(day: date) -> list[dict[str, Any]]:
    """Jobs the archive learns about late, all inside `day` (a sync that caught up)."""
    start = BASE.replace(year=day.year, month=day.month, day=day.day) + timedelta(hours=3)
    rows = []
    for i in range(30):
        created = start + timedelta(minutes=17 * i)
        status = "ERROR" if i % 3 == 0 else "DONE"
        rows.append(
            job_row(
                f"late{i:02d}",
                "EXTRACTION",
                status,
                created,
                started_at=created + timedelta(seconds=5),
                completed_at=created + timedelta(seconds=400 + 13 * i),
                target_id="late",
                metadata={"pageCount": 10 + i},
            )
        )
    return rows


def test_refreshing_one_day_touches_only_its_rows_and_matches_a_full_recompute(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    archive = _archive()
    conn = fresh_connection(archive)
    refresh_statistics(conn, as_of=AS_OF)
    before = _tables(conn)

    late = _late_jobs_on(DAY)
    changed = Archive(jobs=late)
    changed.insert(conn)

    read_sizes: list[int] = []
    real_read = stats_store.read_jobs

    def counting_read(*args: Any, **kwargs: Any) -> pl.DataFrame:
        frame = real_read(*args, **kwargs)
        read_sizes.append(frame.height)
        return frame

    monkeypatch.setattr(stats_store, "read_jobs", counting_read)
    written = refresh_statistics(conn, tenant="acme", days=[DAY], as_of=AS_OF)
    after = _tables(conn)

    full_archive = _archive()
    full_archive.jobs.extend(late)
    full = fresh_connection(full_archive)
    monkeypatch.setattr(stats_store, "read_jobs", real_read)
    refresh_statistics(full, as_of=AS_OF)
    recomputed = _tables(full)

    scope = Scope.for_days([DAY])
    total_jobs = conn.sql("SELECT count(*) FROM jobs WHERE tenant = 'acme'").fetchall()[0][0]
    # The day's read covers its week plus the 7-day baseline, never the whole history.
    assert read_sizes and read_sizes[0] < 0.7 * total_jobs
    assert written["stats_durations"] > 0
    for spec in TABLES:
        name = spec.name
        acme_after = after[name].filter(pl.col("tenant") == "acme")
        acme_before = before[name].filter(pl.col("tenant") == "acme")
        acme_full = recomputed[name].filter(pl.col("tenant") == "acme")
        owned_after = _owned(acme_after, name, scope)
        owned_before = _owned(acme_before, name, scope)
        owned_full = _owned(acme_full, name, scope)
        # Untouched: every row the day does not own, and every row of the other tenant.
        assert _sorted(acme_after.filter(~owned_after)).equals(_sorted(acme_before.filter(~owned_before))), (
            name
        )
        assert _sorted(after[name].filter(pl.col("tenant") == "globex")).equals(
            _sorted(before[name].filter(pl.col("tenant") == "globex"))
        ), name
        # Rewritten: equal to what a full recompute writes for those buckets.
        # (floats to 1e-12: a sum's last bit may depend on the order rows arrive in)
        key_columns = [c for c, t in acme_after.schema.items() if not t.is_float()]
        assert_frames_close(
            acme_after.filter(owned_after), acme_full.filter(owned_full), key_columns, rel=1e-12
        )
    # The late jobs did change the owned rows (the test is not vacuous).
    durations = "stats_durations"
    assert not _sorted(after[durations].filter(_owned(after[durations], durations, scope))).equals(
        _sorted(before[durations].filter(_owned(before[durations], durations, scope)))
    )


def test_full_refresh_is_idempotent_and_counts_rows() -> None:
    conn = fresh_connection(_archive())
    first = refresh_statistics(conn, as_of=AS_OF)
    tables = _tables(conn)
    for spec in TABLES:
        assert tables[spec.name].height == first[spec.name], spec.name
    second = refresh_statistics(conn, as_of=AS_OF)
    assert second == first
    again = _tables(conn)
    for spec in TABLES:
        assert _sorted(again[spec.name]).equals(_sorted(tables[spec.name])), spec.name


def test_every_table_view_and_column_is_documented() -> None:
    conn = fresh_connection(Archive())
    ensure_statistics_schema(conn)
    names = [spec.name for spec in TABLES] + [view.name for view in VIEWS]
    undocumented_columns = conn.sql(
        "SELECT table_name, column_name FROM duckdb_columns() "
        "WHERE table_name IN (SELECT unnest($names)) AND (comment IS NULL OR comment = '')",
        params={"names": names},
    ).fetchall()
    assert undocumented_columns == []
    tables = conn.sql(
        "SELECT table_name, comment FROM duckdb_tables() WHERE table_name LIKE 'stats_%'"
    ).fetchall()
    views = conn.sql("SELECT view_name, comment FROM duckdb_views() WHERE NOT internal").fetchall()
    documented = {name: comment for name, comment in tables + views}
    for name in names:
        assert documented.get(name), name
    # Every declared view column exists (a comment on a missing column would be lost silently).
    for view in VIEWS:
        columns = [r[0] for r in conn.sql(f"DESCRIBE {view.name}").fetchall()]
        assert columns == [c for c, _ in view.columns], view.name


def test_views_read_the_tables() -> None:
    conn = fresh_connection(_archive())
    refresh_statistics(conn, as_of=AS_OF)
    daily = conn.sql(
        "SELECT * FROM daily_run_time WHERE tenant = 'acme' AND job_type = '*' ORDER BY day"
    ).pl()
    source = conn.sql(
        "SELECT count FROM stats_durations WHERE tenant = 'acme' AND job_type = '*' AND bucket_grain = 'day' "
        "AND metric = 'run_time' ORDER BY bucket_start"
    ).pl()
    assert daily["runs"].to_list() == source["count"].to_list() and daily.height >= 24
    for view in VIEWS:
        assert conn.sql(f"SELECT count(*) FROM {view.name}").fetchall()[0][0] >= 0
    running = conn.sql("SELECT count(*) FROM running_job_eta WHERE still_running").fetchall()[0][0]
    expected = conn.sql(
        "SELECT count(*) FROM jobs WHERE status = 'IN_PROGRESS' AND vanished_at IS NULL "
        "AND started_at IS NOT NULL AND created_at >= $as_of - INTERVAL 24 HOUR",
        params={"as_of": AS_OF},
    ).fetchall()[0][0]
    assert running == expected > 0
    timeline = conn.sql("SELECT event, seq FROM job_timeline WHERE job_id = 'j0001' ORDER BY seq").fetchall()
    assert timeline[0] == ("created", 1)


def test_cookbook_queries_run() -> None:
    text = COOKBOOK.read_text()
    queries = re.findall(r"```sql\n(.*?)```", text, flags=re.S)
    assert len(queries) >= 4
    conn = fresh_connection(_archive())
    refresh_statistics(conn, as_of=AS_OF)
    for query in queries:
        conn.sql(query).fetchall()
    docstring = stats_store.__doc__ or ""
    for query in queries[:2]:
        first_line = query.strip().splitlines()[0]
        assert first_line in docstring


def test_default_as_of_is_the_latest_observation() -> None:
    archive = _archive()
    conn = fresh_connection(archive)
    latest = max(j["last_seen_at"] for j in archive.jobs if j["tenant"] == "acme")
    assert latest_observation(conn, "acme") == latest
    # A later sync that saw nothing new still moves the horizon (warnings in `error` do not matter).
    insert_sync_run(conn, "acme", "later", latest + timedelta(minutes=5), error="rejected 1 record")
    insert_sync_run(conn, "globex", "other", latest + timedelta(hours=5))
    assert latest_observation(conn, "acme") == latest + timedelta(minutes=5)
    assert latest_observation(conn, "nobody") is None


def test_tenant_filter_and_days_touched() -> None:
    conn = fresh_connection(_archive())
    written = refresh_statistics(conn, tenant="globex", as_of=AS_OF)
    tenants = {r[0] for r in conn.sql("SELECT DISTINCT tenant FROM stats_durations").fetchall()}
    assert tenants == {"globex"} and written["stats_durations"] > 0
    since = AS_OF - timedelta(hours=2)
    touched = days_touched_since(conn, since)
    assert touched and touched[-1] == AS_OF.date()
    assert all(d >= (since - timedelta(days=2)).date() for d in touched)


def test_refreshing_days_without_data_writes_nothing_and_clears_them() -> None:
    conn = fresh_connection(_archive())
    empty_day = (BASE - timedelta(days=30)).date()
    written = refresh_statistics(conn, days=[empty_day], as_of=AS_OF)
    assert all(rows == 0 for name, rows in written.items() if name != "stats_running_eta")
    assert written["stats_running_eta"] > 0  # the running jobs are always re-estimated
    assert conn.sql("SELECT count(*) FROM stats_durations").fetchall()[0][0] == 0
