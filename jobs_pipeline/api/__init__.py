"""HTTP client for the Devana Jobs API. Knows nothing of DuckDB, Dagster or capture planning.

Modules, one concept each: `models` (the data contract), `parse` (JSON -> Job/RejectedRecord),
`query` (validated query parameters), `headers` (Date / Retry-After), `errors` (typed failures),
`limiter` (process-wide sliding-window budget), `client` (JobsClient), `pagination` (SliceWalk),
`monitor` (wait_for_job, job_statistics).
"""

from jobs_pipeline.api.client import DEFAULT_BASE_URL, JobsClient
from jobs_pipeline.api.errors import (
    ApiError,
    AuthError,
    BadRequestError,
    MalformedResponseError,
    NetworkError,
    NotFoundError,
    RateLimitedError,
    ServerError,
)
from jobs_pipeline.api.limiter import SlidingWindowLimiter, key_fingerprint, shared_limiter
from jobs_pipeline.api.models import Job, JobStatus, JobType, Page, RejectedRecord
from jobs_pipeline.api.monitor import (
    JobFailedError,
    JobNotFoundError,
    JobStatistics,
    JobVanishedError,
    WaitTimeoutError,
    job_statistics,
    wait_for_job,
)
from jobs_pipeline.api.pagination import SliceWalk

__all__ = [
    "DEFAULT_BASE_URL",
    "ApiError",
    "AuthError",
    "BadRequestError",
    "Job",
    "JobFailedError",
    "JobNotFoundError",
    "JobStatistics",
    "JobStatus",
    "JobType",
    "JobVanishedError",
    "JobsClient",
    "MalformedResponseError",
    "NetworkError",
    "NotFoundError",
    "Page",
    "RateLimitedError",
    "RejectedRecord",
    "ServerError",
    "SliceWalk",
    "SlidingWindowLimiter",
    "WaitTimeoutError",
    "job_statistics",
    "key_fingerprint",
    "shared_limiter",
    "wait_for_job",
]
