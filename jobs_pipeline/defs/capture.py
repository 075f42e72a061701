"""`capture`: one sync per tenant per materialization, through jobs_pipeline.sync.run_sync (the CLI's path).

The asset evaluates its own `coverage_complete` check, because only it knows how the sync went:
- a sync that applied with gaps (any reason: cap, budget, drift, ...) -> the check fails with WARN, gaps attached;
- a sync that failed -> the check fails with ERROR, and the step fails. A failed sync writes nothing
  (the archive is exactly as before), so this check result is the only trace of it besides the run.
Tenants sync one after the other; one tenant's failure does not skip the others (each sync is atomic).
"""

# No `from __future__ import annotations` here: Dagster inspects the `context` annotation at
# decoration time and does not resolve string annotations.

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from jobs_pipeline.archive import SyncSummary
from jobs_pipeline.defs.names import ARCHIVE_POOL, CAPTURE_GROUP
from jobs_pipeline.defs.resources import DevanaApiResource, JobsArchiveResource
from jobs_pipeline.sync import run_sync

COVERAGE_CHECK = "coverage_complete"


def _seconds_between(start: datetime, end: datetime) -> float:
    return round((end - start).total_seconds(), 3)


def capture_metadata(summaries: Sequence[SyncSummary], now: datetime) -> dict[str, Any]:
    """Materialization metadata: totals over tenants, per-tenant detail in `syncs` and `gaps`."""
    oldest = min(s.observed_at for s in summaries)
    return {
        "tenants": dg.MetadataValue.text(", ".join(s.tenant for s in summaries)),
        "requests": sum(s.requests for s in summaries),
        "pages": sum(s.pages for s in summaries),
        "jobs_seen": sum(s.jobs_seen for s in summaries),
        "jobs_new": sum(s.jobs_new for s in summaries),
        "jobs_changed": sum(s.jobs_changed for s in summaries),
        "jobs_vanished": sum(s.jobs_vanished for s in summaries),
        "rejects": sum(s.rejects for s in summaries),
        "rate_limited": sum(s.rate_limited for s in summaries),
        "coverage_complete": all(s.coverage_complete for s in summaries),
        "gaps": dg.MetadataValue.json({s.tenant: [g.as_json() for g in s.gaps] for s in summaries}),
        "observed_at": dg.MetadataValue.timestamp(oldest),
        # Server clock of the observation vs this process's clock: how old the archive's view is.
        "freshness_lag_seconds": max(_seconds_between(s.observed_at, now) for s in summaries),
        "sync_ids": dg.MetadataValue.json({s.tenant: s.sync_id for s in summaries}),
        # Why each sync cost what it cost: the planner's decisions and requests by purpose.
        "plan_notes": dg.MetadataValue.json({s.tenant: dict(s.plan_notes) for s in summaries}),
        "summary": dg.MetadataValue.md("\n".join(f"- {s.one_line()}" for s in summaries)),
    }


def coverage_result(summaries: Sequence[SyncSummary]) -> dg.AssetCheckResult:
    incomplete = [s for s in summaries if not s.coverage_complete]
    return dg.AssetCheckResult(
        check_name=COVERAGE_CHECK,
        passed=not incomplete,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            "every tenant's sync saw every slice it needed"
            if not incomplete
            else f"gaps in {', '.join(s.tenant for s in incomplete)}: some jobs may be missing until a later sync"
        ),
        metadata={
            "gap_count": sum(len(s.gaps) for s in summaries),
            "gaps": dg.MetadataValue.json({s.tenant: [g.as_json() for g in s.gaps] for s in incomplete}),
        },
    )


def failure_result(failures: dict[str, str], applied: Sequence[SyncSummary]) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=COVERAGE_CHECK,
        passed=False,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"sync failed ({', '.join(sorted(failures))}): nothing was archived for it this time",
        metadata={
            "failed_tenants": dg.MetadataValue.json(failures),
            "applied_tenants": dg.MetadataValue.json([s.tenant for s in applied]),
        },
    )


@dg.asset(
    name="capture",
    group_name=CAPTURE_GROUP,
    pool=ARCHIVE_POOL,
    kinds={"python", "duckdb"},
    description=(
        "One sync of the Devana Jobs API into the DuckDB archive per tenant (jobs_pipeline.sync.run_sync, "
        "the same code as `jobs-pipeline sync`): fetch what changed since the last sync under the rate "
        "budget, apply it atomically, publish the analyst copy. Metadata: requests, pages, jobs "
        "seen/new/changed/vanished, coverage and gaps, rate-limited responses, freshness lag."
    ),
    check_specs=[
        dg.AssetCheckSpec(
            COVERAGE_CHECK,
            asset="capture",
            blocking=True,
            description=(
                "WARN when a sync applied with gaps (a part of the API it could not see: sync_runs.gaps); "
                "ERROR when a sync failed (then nothing was written and downstream steps do not run)."
            ),
        )
    ],
)
def capture(
    context: dg.AssetExecutionContext, api: DevanaApiResource, archive: JobsArchiveResource
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    applied: list[SyncSummary] = []
    failures: dict[str, str] = {}
    try:
        configs = api.sync_configs(archive)
    except Exception as exc:  # a missing key or a bad tenant list: no tenant can sync
        failures["configuration"] = f"{type(exc).__name__}: {exc}"
        configs = []
    for config in configs:
        try:
            summary = run_sync(config)
        except Exception as exc:  # each sync is atomic: the other tenants still get theirs
            failures[config.tenant] = f"{type(exc).__name__}: {exc}"
            context.log.error(f"sync of tenant {config.tenant!r} failed: {exc}")
            continue
        context.log.info(summary.one_line())
        applied.append(summary)
    if failures:
        yield failure_result(failures, applied)
        raise dg.Failure(
            description="; ".join(f"{tenant}: {error}" for tenant, error in sorted(failures.items())),
            metadata={"failed_tenants": dg.MetadataValue.json(failures)},
        )
    yield dg.MaterializeResult(metadata=capture_metadata(applied, datetime.now(UTC)))
    yield coverage_result(applied)
