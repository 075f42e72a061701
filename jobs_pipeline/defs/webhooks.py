"""Dagster view of the webhook spool: how many received events wait for a sync, and since when.

The receiver (`jobs-pipeline webhook serve`) runs outside Dagster; every capture drains the spool.
Events pile up when captures stop (or fail), so this check also runs on the health schedule.
"""

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from jobs_pipeline.defs.resources import DevanaApiResource, JobsArchiveResource
from jobs_pipeline.webhook.spool import spool_depth, spool_dir_for

# Events may wait this many poll intervals (a sync or two) before the check fails.
PILE_UP_INTERVALS = 2.0


def spool_result(
    db_path: str, tenants: list[str], interval_seconds: float, now: datetime
) -> dg.AssetCheckResult:
    limit = PILE_UP_INTERVALS * interval_seconds
    depth: dict[str, int] = {}
    ages: dict[str, float | None] = {}
    for tenant in tenants:
        count, oldest = spool_depth(spool_dir_for(Path(db_path), tenant))
        depth[tenant] = count
        ages[tenant] = None if oldest is None else round((now - oldest).total_seconds(), 1)
    late = sorted(t for t, age in ages.items() if age is not None and age > limit)
    return dg.AssetCheckResult(
        check_name="webhook_spool_drained",
        passed=not late,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(
            f"events waiting longer than {limit:g} s: {', '.join(late)}"
            if late
            else "no event waits too long"
        ),
        metadata={
            "limit_seconds": limit,
            "spool_depth": dg.MetadataValue.json(depth),
            "oldest_event_age_seconds": dg.MetadataValue.json(ages),
        },
    )


@dg.asset_check(
    asset="webhook_events",
    name="webhook_spool_drained",
    description=(
        "No received webhook event has waited in the spool longer than 2 x the poll interval "
        "(metadata: spool depth and age of the oldest undrained event per tenant)."
    ),
)
def webhook_spool_drained(api: DevanaApiResource, archive: JobsArchiveResource) -> dg.AssetCheckResult:
    return spool_result(archive.db_path, api.tenant_names(), api.poll_interval_seconds, datetime.now(UTC))
