"""The HTML report as an asset: the same `build_report` as `jobs-pipeline report`, rewritten after
the statistics it draws from are refreshed."""

from __future__ import annotations

import os
from contextlib import closing
from pathlib import Path

import dagster as dg

from jobs_pipeline.defs.names import STATISTICS_GROUP
from jobs_pipeline.defs.resources import JobsArchiveResource
from jobs_pipeline.report.build import build_report


def report_path(archive: JobsArchiveResource) -> Path:
    """$JOBS_PIPELINE_REPORT, else report.html beside the archive."""
    configured = os.environ.get("JOBS_PIPELINE_REPORT")
    return Path(configured) if configured else Path(archive.db_path).with_name("report.html")


@dg.asset(
    name="report",
    deps=["stats_durations", "stats_failure_rates", "stats_type_mix", "stats_in_flight", "sync_runs"],
    group_name=STATISTICS_GROUP,
    kinds={"html"},
    description=(
        "Self-contained HTML report (charts inline, no network): durations, failure rates with 95 % bands, "
        "type mix, in-flight jobs, slowest and failing jobs, capture coverage. Written beside the archive "
        "(or to $JOBS_PIPELINE_REPORT); read-only on the archive's published copy."
    ),
    automation_condition=dg.AutomationCondition.eager(),
)
def report(archive: JobsArchiveResource) -> dg.MaterializeResult:
    path = report_path(archive)
    with closing(archive.open_for_reading()) as conn:
        html = build_report(conn)
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)  # readers never see half a report
    return dg.MaterializeResult(
        metadata={"path": dg.MetadataValue.path(str(path)), "bytes": len(html.encode("utf-8"))}
    )
