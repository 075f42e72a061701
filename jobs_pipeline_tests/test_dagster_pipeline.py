"""The Dagster code location end to end: the real definitions, run in-process against the API twin.

The twin's clock starts a few minutes before the wall clock, so that the freshness check (wall clock)
and the daily partitions (today, yesterday) mean what they mean in production. The twin runs without
a server-side rate limit and the client with a high one: the syncs are small and fast.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from jobs_pipeline.archive import ArchivePaths, open_for_analysis, open_writer
from jobs_pipeline.definitions import defs
from jobs_pipeline.defs.resources import DevanaApiResource, JobsArchiveResource
from jobs_pipeline.defs.statistics import failure_rate_preview, run_time_preview
from jobs_pipeline.twin import SteppedClock, Twin, TwinConfig

SECRET = "sk-twin-secret-4f9d2c"  # distinctive, so that a leak into the event log is found
SECOND_SECRET = "sk-twin-secret-second-77ab"
ARCHIVE_TABLES = ("jobs", "job_snapshots", "job_status_changes", "sync_runs", "rejected_records")


@pytest.fixture
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dg.DagsterInstance]:
    # DAGSTER_HOME in a temp dir, so that nothing reads or writes a real instance; the instance
    # itself is in memory (sqlite on disk costs seconds per run on a busy 2-core machine).
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.ephemeral() as test_instance:
        yield test_instance


@pytest.fixture
def served() -> Iterator[tuple[str, SteppedClock]]:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=12)
    clock = SteppedClock(start=start)
    twin = Twin(
        TwinConfig(jobs_per_day=500, seed=11, api_keys=(SECRET, SECOND_SECRET), rate_limit=None), clock=clock
    )
    with twin.serve() as base_url:
        yield base_url, clock


def definitions_with(api: DevanaApiResource, archive: JobsArchiveResource) -> dg.Definitions:
    """The code location's definitions, bound to test resources instead of the environment's."""
    return dg.Definitions(
        assets=defs.assets,
        asset_checks=defs.asset_checks,
        schedules=defs.schedules,
        sensors=defs.sensors,
        jobs=defs.jobs,
        executor=defs.executor,
        resources={"api": api, "archive": archive},
    )


def api_for(base_url: str, **overrides: Any) -> DevanaApiResource:
    # The twin runs on simulated time: no comparison with the local clock.
    settings: dict[str, Any] = {
        "base_url": base_url,
        "api_key": SECRET,
        "rate_limit": 6000,
        "timeout": 5.0,
        "max_clock_skew_seconds": None,
    }
    settings.update(overrides)
    return DevanaApiResource(**settings)


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with closing(open_for_analysis(db)) as conn:
        return conn.execute(sql).fetchall()


def checks_by_name(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def materializations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetMaterialization]:
    return {
        e.asset_key.to_user_string(): e.materialization for e in result.get_asset_materialization_events()
    }


# Raised inside dagster's own evaluate_automation_conditions (AssetSelection.all(include_sources=...)).
@pytest.mark.filterwarnings("ignore:Parameter `include_sources`")
def test_scheduled_pipeline_end_to_end(
    served: tuple[str, SteppedClock], instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    base_url, clock = served
    db = tmp_path / "archive.duckdb"
    test_defs = definitions_with(api_for(base_url), JobsArchiveResource(db_path=str(db)))
    capture_job = test_defs.resolve_job_def("capture_job")
    # The automation sensor's first tick only sets its cursor; later ticks react to updates.
    automation = dg.evaluate_automation_conditions(defs=test_defs, instance=instance)
    assert automation.total_requested == 0

    results = []
    for _ in range(3):
        results.append(capture_job.execute_in_process(instance=instance))
        clock.advance(timedelta(minutes=5))
    last = results[-1]
    assert all(r.success for r in results)

    # Archive content: three applied syncs, every job once, consistent with the capture metadata.
    assert rows(db, "SELECT count(*) FROM sync_runs WHERE tenant = 'default'") == [(3,)]
    first_capture = materializations(results[0])["capture"].metadata
    archived = rows(db, "SELECT count(*) FROM jobs")[0][0]
    assert first_capture["jobs_new"].value == first_capture["jobs_seen"].value > 0
    assert archived >= first_capture["jobs_seen"].value
    capture_md = materializations(last)["capture"].metadata
    for name in (
        "requests",
        "pages",
        "jobs_seen",
        "jobs_new",
        "jobs_changed",
        "jobs_vanished",
        "rate_limited",
    ):
        assert isinstance(capture_md[name].value, int), name
    assert capture_md["requests"].value >= 1 and capture_md["coverage_complete"].value is True
    assert capture_md["gaps"].value == {"default": []}
    # Why the sync cost what it cost: its requests by purpose add up to its requests (retries aside).
    notes = capture_md["plan_notes"].value["default"]
    spent = sum(n for key, n in notes.items() if key.startswith("requests."))
    assert 1 <= spent <= capture_md["requests"].value
    assert rows(db, "SELECT count(*) FROM sync_runs WHERE plan_notes IS NULL") == [(0,)]
    # The twin's clock is ~2 min behind the wall clock at the third sync.
    assert 60 < capture_md["freshness_lag_seconds"].value < 600

    # Archive table assets: row counts equal the published copy, schema carries the COMMENTs.
    tables = materializations(last)
    for table in ARCHIVE_TABLES:
        assert (
            tables[table].metadata["dagster/row_count"].value
            == rows(db, f"SELECT count(*) FROM {table}")[0][0]
        )
    jobs_schema = tables["jobs"].metadata["dagster/column_schema"].value
    assert [c.name for c in jobs_schema.columns][:2] == ["tenant", "job_id"]
    assert all(c.description for c in jobs_schema.columns)

    checks = checks_by_name(last)
    for name in ("coverage_complete", "no_duplicate_job_ids", "timestamps_ordered", "progress_in_range"):
        assert checks[name].passed, name
    assert checks["sync_runs_fresh"].passed
    assert "no_stuck_jobs" in checks  # evaluated (verdict depends on the twin's slow tail)

    # Declarative automation: after the archive tables updated, today and yesterday are due.
    automation = dg.evaluate_automation_conditions(
        defs=test_defs, instance=instance, cursor=automation.cursor
    )
    # Partitions follow the wall clock (UTC), as the sensor does.
    today = datetime.now(UTC).date()
    yesterday = today - timedelta(days=1)
    assert automation.get_requested_partitions(dg.AssetKey("stats_durations")) == {
        yesterday.isoformat(),
        today.isoformat(),
    }

    # Run them the way the sensor does (one run for the range, as the backfill policy allows).
    stats_keys = [
        key for key in test_defs.resolve_all_asset_keys() if key.to_user_string().startswith("stats_")
    ]
    stats_job = test_defs.resolve_implicit_job_def_def_for_assets(stats_keys)
    assert stats_job is not None
    stats = stats_job.execute_in_process(
        instance=instance,
        asset_selection=stats_keys,
        tags={
            "dagster/asset_partition_range_start": yesterday.isoformat(),
            "dagster/asset_partition_range_end": today.isoformat(),
        },
    )
    assert stats.success
    assert set(materializations(stats)) == {key.to_user_string() for key in stats_keys}
    stats_md = materializations(stats)
    assert stats_md["stats_durations"].metadata["days"].value == f"{yesterday} .. {today}"
    assert stats_md["stats_durations"].metadata["rows_written"].value > 0
    # The previews describe the run's last day (today: maybe still empty just after midnight);
    # yesterday is always fully inside the twin's 26 h of history, so its tables have rows.
    assert (
        stats_md["stats_durations"]
        .metadata["preview"]
        .value.startswith(f"**Run time of DONE jobs completed on {today}")
    )
    assert (
        f"on {today} (UTC), 95 % Wilson interval" in stats_md["stats_failure_rates"].metadata["preview"].value
    )
    with closing(open_for_analysis(db)) as conn:
        run_times, failure_rates = run_time_preview(conn, yesterday), failure_rate_preview(conn, yesterday)
    assert "| tenant | type | runs | p50 | p95 | p99 |" in run_times and "| default | all |" in run_times
    assert "| default | all |" in failure_rates and " % - " in failure_rates
    written_days = {day for (day,) in rows(db, "SELECT DISTINCT day FROM daily_run_time")}
    assert yesterday in written_days and written_days <= {yesterday, today}
    assert "no_failure_spike" in checks_by_name(stats)

    # The health job alone: fresh with the 5-minute interval, stale with a 30-second one.
    health = test_defs.resolve_job_def("archive_health_job").execute_in_process(instance=instance)
    assert checks_by_name(health)["sync_runs_fresh"].passed
    strict = definitions_with(
        api_for(base_url, poll_interval_seconds=30), JobsArchiveResource(db_path=str(db))
    )
    stale = strict.resolve_job_def("archive_health_job").execute_in_process(instance=instance)
    stale_check = checks_by_name(stale)["sync_runs_fresh"]
    assert not stale_check.passed and stale_check.severity == dg.AssetCheckSeverity.ERROR

    # The key never reaches the event log (messages, metadata, config).
    for run_id in instance.get_run_ids():
        assert SECRET not in repr(instance.get_run_by_id(run_id))
        for entry in instance.all_logs(run_id):
            assert SECRET not in repr(entry)


def capture_only(test_defs: dg.Definitions, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    job = test_defs.resolve_job_def("capture_job")
    return job.execute_in_process(
        instance=instance, asset_selection=[dg.AssetKey("capture")], raise_on_error=False
    )


def test_busy_writer_and_open_analyst_session_do_not_fail_a_run(
    served: tuple[str, SteppedClock], instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    base_url, clock = served
    db = tmp_path / "archive.duckdb"
    test_defs = definitions_with(api_for(base_url), JobsArchiveResource(db_path=str(db), lock_timeout=30))
    assert capture_only(test_defs, instance).success
    clock.advance(timedelta(minutes=5))

    # An analyst keeps a read-only session on the published file, and another writer (a manual
    # `jobs-pipeline sync`, say) holds the archive for a moment when the scheduled run starts.
    analyst = duckdb.connect(str(db), read_only=True)
    before = analyst.execute("SELECT count(*) FROM sync_runs").fetchone()
    held = threading.Event()

    def other_writer() -> None:
        with open_writer(db, lock_timeout=5):
            held.set()
            time.sleep(1.5)

    holder = threading.Thread(target=other_writer)
    holder.start()
    assert held.wait(10)
    started = time.monotonic()
    result = capture_only(test_defs, instance)
    waited = time.monotonic() - started
    holder.join()
    assert result.success
    assert waited >= 1.0  # it queued behind the lock instead of failing
    # The analyst's session still answers, from the version it opened; a new session sees the run.
    assert analyst.execute("SELECT count(*) FROM sync_runs").fetchone() == before
    analyst.close()
    assert rows(db, "SELECT count(*) FROM sync_runs") == [(2,)]

    # A writer that holds the lock longer than lock_timeout: the sync fails, nothing is written,
    # and the coverage check records the failure as ERROR (the run itself fails too).
    impatient = definitions_with(api_for(base_url), JobsArchiveResource(db_path=str(db), lock_timeout=0.2))
    clock.advance(timedelta(minutes=5))
    with open_writer(db, lock_timeout=5):
        failed = capture_only(impatient, instance)
    assert not failed.success
    coverage = checks_by_name(failed)["coverage_complete"]
    assert not coverage.passed and coverage.severity == dg.AssetCheckSeverity.ERROR
    assert "ArchiveBusyError" in str(coverage.metadata["failed_tenants"].value["default"])
    assert rows(db, "SELECT count(*) FROM sync_runs") == [(2,)]
    assert ArchivePaths.for_db(db).published.is_file()


def test_two_tenants_share_one_archive_without_mixing(
    served: tuple[str, SteppedClock],
    instance: dg.DagsterInstance,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base_url, _ = served
    db = tmp_path / "archive.duckdb"
    monkeypatch.setenv("ACME_API_KEY", SECRET)
    monkeypatch.setenv("BETA_API_KEY", SECOND_SECRET)
    api = api_for(base_url, api_key=None, tenants="acme:ACME_API_KEY,beta:BETA_API_KEY:50")
    result = (
        definitions_with(api, JobsArchiveResource(db_path=str(db)))
        .resolve_job_def("capture_job")
        .execute_in_process(instance=instance)
    )
    assert result.success
    assert rows(db, "SELECT tenant, count(*) FROM sync_runs GROUP BY tenant ORDER BY tenant") == [
        ("acme", 1),
        ("beta", 1),
    ]
    per_tenant = dict(rows(db, "SELECT tenant, count(*) FROM jobs GROUP BY tenant"))
    assert per_tenant["acme"] == per_tenant["beta"] > 0
    capture_md = materializations(result)["capture"].metadata
    assert capture_md["tenants"].value == "acme, beta"
    assert set(capture_md["sync_ids"].value) == {"acme", "beta"}
    assert materializations(result)["jobs"].metadata["rows_per_tenant"].value == per_tenant
    # Both keys reach the same account in the twin: the archive keeps them apart, and the duplicate
    # check names exactly that mistake (one account configured under two tenant names).
    duplicates = checks_by_name(result)["no_duplicate_job_ids"]
    assert not duplicates.passed
    assert duplicates.metadata["duplicates_across_tenants"].value == per_tenant["acme"]
    assert duplicates.metadata["duplicates_within_tenant"].value == 0


def test_missing_key_fails_the_run_with_an_error_check_and_no_archive(
    instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    db = tmp_path / "archive.duckdb"
    test_defs = definitions_with(
        DevanaApiResource(base_url="http://127.0.0.1:9"), JobsArchiveResource(db_path=str(db))
    )
    failed = capture_only(test_defs, instance)
    assert not failed.success
    coverage = checks_by_name(failed)["coverage_complete"]
    assert not coverage.passed and coverage.severity == dg.AssetCheckSeverity.ERROR
    assert "DEVANA_API_KEY is not set" in str(coverage.metadata["failed_tenants"].value)
    assert not db.exists()
