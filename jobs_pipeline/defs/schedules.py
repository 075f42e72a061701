"""When things run.

- `capture_schedule` runs `capture_job` (capture + the archive tables + their checks) every 5 minutes
  by default; JOBS_PIPELINE_CAPTURE_CRON changes the cron (then set JOBS_PIPELINE_POLL_INTERVAL_SECONDS
  to match: it sizes each sync's request budget and the freshness check's limit).
- `archive_health_schedule` runs the freshness check on its own every 10 minutes: when captures keep
  failing, nothing downstream of them runs, so only an independent run can say the archive is stale.
- The statistics follow the archive tables by declarative automation (statistics.py), evaluated by
  the `statistics_automation` sensor below, which is ON by default (it only ever reacts to updates).

The two schedules start STOPPED (the Dagster default: loading the code location must not start
calling an API). Turn them on in the UI (Automation tab) or with `dagster schedule start`, or set
JOBS_PIPELINE_AUTOSTART=1 to have them running as soon as the code location loads.
"""

import os

import dagster as dg

from jobs_pipeline.defs.checks import sync_runs_fresh
from jobs_pipeline.defs.names import ARCHIVE_GROUP, CAPTURE_JOB, HEALTH_JOB, STATISTICS_GROUP
from jobs_pipeline.defs.webhooks import webhook_spool_drained

ENV_CAPTURE_CRON = "JOBS_PIPELINE_CAPTURE_CRON"
ENV_AUTOSTART = "JOBS_PIPELINE_AUTOSTART"
DEFAULT_CAPTURE_CRON = "*/5 * * * *"
HEALTH_CRON = "*/10 * * * *"


def _schedule_status() -> dg.DefaultScheduleStatus:
    autostart = os.environ.get(ENV_AUTOSTART, "").strip().lower() in {"1", "true", "yes", "on"}
    return dg.DefaultScheduleStatus.RUNNING if autostart else dg.DefaultScheduleStatus.STOPPED


capture_job = dg.define_asset_job(
    CAPTURE_JOB,
    selection=dg.AssetSelection.assets("capture") | dg.AssetSelection.groups(ARCHIVE_GROUP),
    description="One sync per tenant, then the archive tables' schema, row counts and checks.",
)

archive_health_job = dg.define_asset_job(
    HEALTH_JOB,
    selection=dg.AssetSelection.checks(sync_runs_fresh, webhook_spool_drained),
    description="The archive's freshness and webhook-spool checks (independent of whether captures succeed).",
)

capture_schedule = dg.ScheduleDefinition(
    name="capture_schedule",
    job=capture_job,
    cron_schedule=os.environ.get(ENV_CAPTURE_CRON) or DEFAULT_CAPTURE_CRON,
    execution_timezone="UTC",
    default_status=_schedule_status(),
    description="Sync the Jobs API into the archive (cron from $JOBS_PIPELINE_CAPTURE_CRON, default every 5 min).",
)

archive_health_schedule = dg.ScheduleDefinition(
    name="archive_health_schedule",
    job=archive_health_job,
    cron_schedule=HEALTH_CRON,
    execution_timezone="UTC",
    default_status=_schedule_status(),
    description="Check that every tenant's last applied sync is recent (2 x the poll interval).",
)

statistics_automation = dg.AutomationConditionSensorDefinition(
    "statistics_automation",
    target=dg.AssetSelection.groups(STATISTICS_GROUP),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Refreshes today's and yesterday's statistics after each update of the archive tables.",
)
