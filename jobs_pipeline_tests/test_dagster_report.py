"""The report asset writes the same self-contained HTML as `jobs-pipeline report`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from jobs_pipeline.api.client import JobsClient
from jobs_pipeline.archive import open_writer
from jobs_pipeline.defs.report import report
from jobs_pipeline.defs.resources import JobsArchiveResource
from jobs_pipeline.stats_store import refresh_statistics
from jobs_pipeline.sync import SyncConfig, run_sync
from jobs_pipeline.twin import SteppedClock, Twin, TwinConfig


def test_report_asset_writes_the_html_report_beside_the_archive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    monkeypatch.delenv("JOBS_PIPELINE_REPORT", raising=False)
    db = tmp_path / "archive.duckdb"
    clock = SteppedClock(start=datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3))
    twin = Twin(TwinConfig(jobs_per_day=2000, seed=5, api_keys=("k",), rate_limit=None), clock=clock)
    with twin.serve() as url, JobsClient(url, "k", rate_limit=100_000) as client:
        config = SyncConfig(base_url=url, max_clock_skew_seconds=None, api_key="k", db_path=db)
        for _ in range(3):
            run_sync(config, source=client)
            clock.advance(timedelta(hours=1))
    with open_writer(db) as conn:
        refresh_statistics(conn)

    result = dg.materialize([report], resources={"archive": JobsArchiveResource(db_path=str(db))})

    assert result.success
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert html.count("<svg") >= 3
