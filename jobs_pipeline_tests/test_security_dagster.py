"""The API key never reaches Dagster: not the event log (messages, metadata, check results, failure
descriptions), not the run records (config, tags), whether the sync succeeds or fails. And the
Dagster runs only ever send `GET /v1/jobs` (the read-only rule, test_security_readonly.py).

The resources are built the production way, from the environment (`resources_from_env`): the key
travels as EnvVar("DEVANA_API_KEY") and is read only when a run starts.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from benchmarks.soak import read_only_violations
from jobs_pipeline.definitions import defs
from jobs_pipeline.defs.resources import resources_from_env
from jobs_pipeline.twin import FaultConfig, SteppedClock, Twin, TwinConfig

SECRET = "sk-devana-dagster-3b8f0e2d9c71"
WRONG_SECRET = "sk-devana-dagster-wrong-6e4a1c"


@pytest.fixture
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dg.DagsterInstance]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.instance_for_test(temp_dir=str(home)) as test_instance:
        yield test_instance


@pytest.fixture
def twin() -> Iterator[tuple[Twin, str]]:
    clock = SteppedClock(start=datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5))
    served = Twin(
        TwinConfig(jobs_per_day=300, seed=3, api_keys=(SECRET,), rate_limit=None, faults=FaultConfig()),
        clock=clock,
    )
    with served.serve() as url:
        yield served, url


def run_capture(
    instance: dg.DagsterInstance, env: dict[str, str], *, whole_job: bool
) -> dg.ExecuteInProcessResult:
    resources = resources_from_env(env)
    test_defs = dg.Definitions(
        assets=defs.assets,
        asset_checks=defs.asset_checks,
        jobs=defs.jobs,
        executor=defs.executor,
        resources=resources,
    )
    job = test_defs.resolve_job_def("capture_job")
    selection = None if whole_job else [dg.AssetKey("capture")]
    return job.execute_in_process(instance=instance, asset_selection=selection, raise_on_error=False)


def everything_dagster_stored(instance: dg.DagsterInstance) -> str:
    parts = []
    for run in instance.get_runs():
        parts += [repr(entry) for entry in instance.all_logs(run.run_id)]
        parts += [repr(run.run_config), repr(run.tags), repr(run)]
    return "\n".join(parts)


def test_the_key_stays_out_of_dagster_on_success_and_failure(
    instance: dg.DagsterInstance, twin: tuple[Twin, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served, url = twin
    env = {
        "DEVANA_API_URL": url,
        "JOBS_PIPELINE_DB": str(tmp_path / "archive.duckdb"),
        "JOBS_PIPELINE_MAX_CLOCK_SKEW": "0",  # the twin runs on simulated time
    }
    monkeypatch.setenv("DEVANA_API_KEY", SECRET)
    ok = run_capture(instance, {**env, "DEVANA_API_KEY": SECRET}, whole_job=True)
    assert ok.success

    # The API refuses the key: the failure's description and metadata carry the error text.
    monkeypatch.setenv("DEVANA_API_KEY", WRONG_SECRET)
    refused = run_capture(instance, {**env, "DEVANA_API_KEY": WRONG_SECRET}, whole_job=False)
    assert not refused.success

    # A storm the client cannot ride out, with the key the API accepts.
    monkeypatch.setenv("DEVANA_API_KEY", SECRET)
    served.faults.configure(retry_after_seconds=600)
    served.faults.fail_next(1, "503")
    stormed = run_capture(instance, {**env, "DEVANA_API_KEY": SECRET}, whole_job=False)
    assert not stormed.success

    stored = everything_dagster_stored(instance)
    assert "rejected the key" in stored and "(503)" in stored  # the failures were recorded...
    assert SECRET not in stored and WRONG_SECRET not in stored  # ...without the key
    assert len(served.requests) >= 3 and read_only_violations(served.requests) == []
