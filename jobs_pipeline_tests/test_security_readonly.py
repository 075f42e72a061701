"""The archiver is read-only: nothing but `GET /v1/jobs` (with status filters and in-cap limit and
offset) ever reaches the API, whatever runs against it: syncs (with retries under faults, and
through the CLI), `watch`, `wait`, the monitor's statistics, slice walks. The Dagster run is
checked in test_security_dagster.py.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from benchmarks.soak import KEY, read_only_violations, soak_twin
from jobs_pipeline.api.monitor import job_statistics, wait_for_job
from jobs_pipeline.cli.main import app
from jobs_pipeline.twin import FaultConfig


def test_everything_the_project_runs_only_ever_sends_get_jobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults = FaultConfig(rate=0.1, kinds=("500", "429", "reset", "bad_record"), retry_after_seconds=0, seed=3)
    with soak_twin(tmp_path / "archive.duckdb", jobs_per_day=600, faults=faults) as soak:
        document = soak.twin.add_job("EXTRACTION", queue_seconds=1, run_seconds=20)
        target = next(j["targetId"] for j in soak.twin.visible_jobs() if j["id"] == document)
        for kind in ("503", "timeout", "truncated"):
            soak.twin.faults.fail_next(1, kind)  # and the random ones
            soak.sync()
            soak.advance(minutes=10)
        assert soak.client.retries > 0  # faults were met and retried
        statistics = job_statistics(soak.client)
        assert statistics.total > 0
        done = wait_for_job(soak.client, target, "EXTRACTION", timeout=5, sleep=lambda seconds: None)
        assert done.status == "DONE"
        for status in ("PENDING", "IN_PROGRESS", "DONE", "ERROR"):
            assert sum(1 for _ in soak.client.iter_slice(status=status)) >= 1

        monkeypatch.setenv("DEVANA_API_KEY", KEY)
        soak.twin.faults.configure(rate=0.0)
        runner = CliRunner()
        for args in (
            [
                "sync",
                "--max-clock-skew",
                "0",
                "--base-url",
                soak.url,
                "--db",
                str(soak.db),
                "--rate-limit",
                "100000",
            ],
            ["watch", "--base-url", soak.url, "--once", "--db", str(soak.db)],
            ["wait", "--base-url", soak.url, "--target", target, "--type", "EXTRACTION", "--timeout", "5"],
        ):
            soak.advance(minutes=1)
            result = runner.invoke(app, args)
            assert result.exit_code == 0, (args[0], result.output, result.exception)

        requests = soak.twin.requests
        commands = {r.query.get("type") for r in requests} | {bool(r.query.get("targetId")) for r in requests}
        assert len(requests) >= 20 and {"DONE", True} <= commands  # a real mix was sent
        assert all(r.key_ok for r in requests)
        assert read_only_violations(requests) == []

        # The check is not vacuous: a write, a stray path, an over-cap query and a job type as
        # `type` would all be reported.
        with httpx.Client(base_url=soak.url, headers={"Authorization": f"Bearer {KEY}"}) as raw:
            raw.post("/v1/jobs")
            raw.get("/documents/abc/reextract")
            raw.get("/v1/jobs", params={"limit": 500})
            raw.get("/v1/jobs", params={"type": "EXTRACTION"})
        flagged = read_only_violations(soak.twin.requests[len(requests) :])
        assert len(flagged) == 4, flagged
