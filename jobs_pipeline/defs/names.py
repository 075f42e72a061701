"""Names shared by several definition modules: groups, the archive's concurrency pool, job names."""

from __future__ import annotations

# Every asset that WRITES the archive runs in this pool. Give it a limit of 1 in the instance
# (`dagster instance concurrency set jobs_archive 1`, or dagster.yaml concurrency.pools): Dagster
# then queues a second writer instead of letting it wait on the archive's flock underneath.
ARCHIVE_POOL = "jobs_archive"

CAPTURE_GROUP = "capture"
ARCHIVE_GROUP = "archive"
STATISTICS_GROUP = "statistics"

CAPTURE_JOB = "capture_job"
HEALTH_JOB = "archive_health_job"
