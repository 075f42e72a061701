"""The hot/sealed layout: which archive tables are split in two, and how each row finds its day.

Why two parts: the API forgets a job 24 h after its creation, so a job created more than 24 h (plus
a margin) before the latest sync can never change again. The writer keeps only what can still
change in its private DuckDB store, schema `hot`; everything older is SEALED, written once per
tenant and UTC day into ZSTD Parquet files beside the archive:

    <dir>/<stem>.sealed/<table>/tenant=<tenant>/day=<YYYY-MM-DD>/data.parquet

In schema `main` (what analysts query) each archive table is a VIEW: its hot rows UNION ALL its
sealed files, with the same name, columns and comments as the table it replaced (`views.py`).

Two families of tables, two horizons per tenant:
* job tables (`jobs`, `job_snapshots`, `job_status_changes`): every row is about ONE job and is
  filed under the day the job was CREATED. Nothing can be written about a job once it has left the
  API's window and been marked expired, so a day is sealed once all its jobs are older than
  24 h + `SEAL_MARGIN` at the latest sync.
* log tables (`sync_runs`, `rejected_records`, `webhook_events`): every row belongs to the sync that wrote it and is
  filed under that sync's server-clock day (`observed_at`). A day is sealed once it ended more
  than `SEAL_MARGIN` before the latest sync.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import Enum

from jobs_pipeline.api.models import RETENTION_HOURS

HOT_SCHEMA = "hot"
SEALED_FILE = "data.parquet"

# Absorbs clock skew between the server and this machine, and syncs that run a little late.
SEAL_MARGIN = timedelta(hours=1)
# How many days one sync seals at most per tenant: a sync after a long pause (or the first one after
# upgrading an old archive) catches up over a few syncs instead of holding the lock for minutes.
MAX_DAYS_PER_SYNC = 14


class Family(Enum):
    JOB = "job"
    LOG = "log"


@dataclass(frozen=True, slots=True)
class SealedTable:
    name: str
    family: Family
    # ORDER BY of the rows inside a day file: similar rows side by side compress better and let
    # readers skip row groups on the usual filters.
    order_by: str


SEALED_TABLES: tuple[SealedTable, ...] = (
    SealedTable("jobs", Family.JOB, "created_at, job_id"),
    SealedTable("job_snapshots", Family.JOB, "job_id, observed_at"),
    SealedTable("job_status_changes", Family.JOB, "job_id, changed_before, step"),
    SealedTable("sync_runs", Family.LOG, "observed_at, sync_id"),
    SealedTable("rejected_records", Family.LOG, "observed_at"),
    SealedTable("webhook_events", Family.LOG, "observed_at, event_key"),  # schema version 5
)
SEALED_TABLE_NAMES: tuple[str, ...] = tuple(t.name for t in SEALED_TABLES)


def hot(table: str) -> str:
    """The writer-side name of an archive table: where its rows are written."""
    return f"{HOT_SCHEMA}.{table}"


def seal_through(family: Family, as_of: datetime) -> date:
    """The last UTC day of `family` that is immutable at server time `as_of` (inclusive)."""
    age = timedelta(hours=RETENTION_HOURS) + SEAL_MARGIN if family is Family.JOB else SEAL_MARGIN
    return (as_of.astimezone(UTC) - age).date() - timedelta(days=1)


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
