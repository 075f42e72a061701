"""The code location loads, and holds what docs/dagster.md promises; its settings come from the env."""

from __future__ import annotations

import dagster as dg
import pytest

from jobs_pipeline.definitions import defs
from jobs_pipeline.defs.names import ARCHIVE_POOL
from jobs_pipeline.defs.resources import (
    DevanaApiResource,
    JobsArchiveResource,
    TenantKey,
    parse_tenants,
    resources_from_env,
)
from jobs_pipeline.sync import ConfigError

ARCHIVE_TABLES = {
    "jobs",
    "job_snapshots",
    "job_status_changes",
    "sync_runs",
    "rejected_records",
    "webhook_events",
}
CHECKS = {
    ("capture", "coverage_complete"),
    ("jobs", "no_duplicate_job_ids"),
    ("jobs", "timestamps_ordered"),
    ("jobs", "progress_in_range"),
    ("jobs", "no_stuck_jobs"),
    ("sync_runs", "sync_runs_fresh"),
    ("webhook_events", "webhook_spool_drained"),
    ("stats_failure_spikes", "no_failure_spike"),
}


def test_definitions_load_with_every_asset_check_and_automation() -> None:
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    stats = {key for key in keys if key.startswith("stats_")}
    assert keys == {"capture", "report"} | ARCHIVE_TABLES | stats
    assert {"stats_durations", "stats_failure_rates", "stats_failure_spikes", "stats_running_eta"} <= stats
    checks = {(key.asset_key.to_user_string(), key.name) for key in graph.asset_check_keys}
    assert checks == CHECKS

    groups = {key.to_user_string(): graph.get(key).group_name for key in graph.get_all_asset_keys()}
    assert groups["capture"] == "capture"
    assert {groups[t] for t in ARCHIVE_TABLES} == {"archive"}
    assert {groups[s] for s in stats} == {"statistics"}
    for key in graph.get_all_asset_keys():
        assert graph.get(key).description, f"{key.to_user_string()} has no description"
    # The archive tables announce their columns (with the COMMENTs) before any run.
    jobs_schema = graph.get(dg.AssetKey("jobs")).metadata["dagster/column_schema"]
    assert "vanished_at" in [c.name for c in jobs_schema.columns]

    schedule = defs.resolve_schedule_def("capture_schedule")
    assert schedule.cron_schedule == "*/5 * * * *"
    assert schedule.job.name == "capture_job"
    assert defs.resolve_schedule_def("archive_health_schedule").job.name == "archive_health_job"
    sensor = defs.resolve_sensor_def("statistics_automation")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


def test_every_writer_is_in_the_archive_pool_and_readers_are_not() -> None:
    pools = {}
    for assets_def in defs.resolve_asset_graph().assets_defs:
        for key in assets_def.keys:
            pools[key.to_user_string()] = assets_def.op.pool
    assert pools["capture"] == ARCHIVE_POOL
    assert {pools[k] for k in pools if k.startswith("stats_")} == {ARCHIVE_POOL}
    # The table assets only read the published copy: they must never queue behind a writer.
    assert {pools[t] for t in ARCHIVE_TABLES} == {None}


def test_statistics_are_daily_partitioned_and_follow_the_archive() -> None:
    graph = defs.resolve_asset_graph()
    stats = graph.get(dg.AssetKey("stats_durations"))
    assert isinstance(stats.partitions_def, dg.DailyPartitionsDefinition)
    assert {k.to_user_string() for k in stats.parent_keys} == {"jobs", "job_snapshots"}
    assert stats.automation_condition is not None
    assert stats.automation_condition.get_label() == "eager_today_and_yesterday"


def test_resources_from_env_default_single_tenant() -> None:
    resources = resources_from_env({"DEVANA_API_KEY": "k-123"})
    api, archive = resources["api"], resources["archive"]
    assert isinstance(api, DevanaApiResource) and isinstance(archive, JobsArchiveResource)
    assert api.base_url == "https://api.devana.ai"
    assert archive.db_path == "jobs_archive.duckdb"
    assert api.tenant_keys() == (TenantKey("default", "DEVANA_API_KEY"),)
    assert "k-123" not in repr(api)


def test_resources_from_env_point_at_another_api_and_archive() -> None:
    env = {
        "DEVANA_API_URL": "http://127.0.0.1:9",
        "JOBS_PIPELINE_DB": "/data/archive.duckdb",
        "JOBS_PIPELINE_TENANTS": "acme:ACME_API_KEY, beta:BETA_API_KEY:50",
        "JOBS_PIPELINE_POLL_INTERVAL_SECONDS": "600",
    }
    resources = resources_from_env(env)
    api, archive = resources["api"], resources["archive"]
    assert isinstance(api, DevanaApiResource) and isinstance(archive, JobsArchiveResource)
    assert api.base_url == "http://127.0.0.1:9" and archive.db_path == "/data/archive.duckdb"
    assert api.poll_interval_seconds == 600
    assert api.tenant_names() == ["acme", "beta"]


def test_sync_configs_read_each_tenants_key_at_run_time(monkeypatch: pytest.MonkeyPatch) -> None:
    api = DevanaApiResource(tenants="acme:ACME_API_KEY,beta:BETA_API_KEY:50", rate_limit=100)
    archive = JobsArchiveResource(db_path="a.duckdb", lock_timeout=7)
    monkeypatch.setenv("ACME_API_KEY", "key-a")
    monkeypatch.delenv("BETA_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="BETA_API_KEY is not set") as error:
        api.sync_configs(archive)
    assert "key-a" not in str(error.value)
    monkeypatch.setenv("BETA_API_KEY", "key-b")
    configs = api.sync_configs(archive)
    assert [(c.tenant, c.api_key, c.rate_limit, c.lock_timeout) for c in configs] == [
        ("acme", "key-a", 100, 7),
        ("beta", "key-b", 50, 7),
    ]
    assert "key-a" not in repr(configs[0])


def test_single_tenant_without_key_fails_with_the_variable_name() -> None:
    with pytest.raises(ConfigError, match="DEVANA_API_KEY is not set"):
        DevanaApiResource().sync_configs(JobsArchiveResource())


@pytest.mark.parametrize(
    "spec",
    ["acme", "acme:", "acme:1BAD", "acme:KEY:0", "acme:KEY:x", "a b:KEY", "acme:KEY,acme:OTHER"],
)
def test_malformed_tenant_specs_are_refused(spec: str) -> None:
    with pytest.raises(ConfigError, match="JOBS_PIPELINE_TENANTS"):
        parse_tenants(spec)


def test_empty_tenant_spec_means_the_default_tenant() -> None:
    assert parse_tenants(" , ") == ()
    assert DevanaApiResource(tenants="").tenant_names() == ["default"]
