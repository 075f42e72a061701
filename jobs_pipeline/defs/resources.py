"""The two resources every asset uses: where the API is (and with which keys), where the archive is.

Pointing the code location at the real API is a matter of environment variables only:

    DEVANA_API_KEY          the key of the single default tenant (read at run time via EnvVar)
    DEVANA_API_URL          base URL, default https://api.devana.ai
    JOBS_PIPELINE_DB        the analyst-facing archive file, default ./jobs_archive.duckdb
    JOBS_PIPELINE_TENANTS   several keys into one archive: "acme:ACME_API_KEY,beta:BETA_API_KEY[:50]"
                            (tenant name : NAME of the env var holding its key [: requests/minute])

Keys never enter run config, metadata, logs or descriptions: the resource holds the env var NAMES
and reads the values when a run starts (`repr=False` keeps them out of any repr as well).
"""

from __future__ import annotations

import os
import re
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
from pydantic import Field

from jobs_pipeline.api.models import DEFAULT_RATE_LIMIT_PER_MINUTE
from jobs_pipeline.archive import open_for_analysis, open_writer
from jobs_pipeline.archive.lock import DEFAULT_LOCK_TIMEOUT
from jobs_pipeline.sync import (
    DEFAULT_BASE_URL,
    DEFAULT_DB_PATH,
    DEFAULT_POLL_INTERVAL_SECONDS,
    DEFAULT_TENANT,
    ConfigError,
    SyncConfig,
)

ENV_API_URL = "DEVANA_API_URL"
ENV_API_KEY = "DEVANA_API_KEY"
ENV_DB = "JOBS_PIPELINE_DB"
ENV_TENANTS = "JOBS_PIPELINE_TENANTS"
ENV_POLL_INTERVAL = "JOBS_PIPELINE_POLL_INTERVAL_SECONDS"

_TENANT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class TenantKey:
    """One tenant of the archive: its name and the NAME of the env var holding its API key."""

    tenant: str
    key_env: str
    rate_limit: int | None = None  # requests per minute for this key; None: the resource's default


def parse_tenants(spec: str) -> tuple[TenantKey, ...]:
    """Parse "acme:ACME_API_KEY,beta:BETA_API_KEY:50" (empty: no explicit tenants)."""
    tenants: list[TenantKey] = []
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        parts = [part.strip() for part in item.split(":")]
        if len(parts) not in (2, 3) or not _TENANT_NAME.match(parts[0]) or not _ENV_NAME.match(parts[1]):
            raise ConfigError(
                f"{ENV_TENANTS}: cannot read {item!r}; expected tenant:ENV_VAR_OF_ITS_KEY[:requests_per_minute]"
            )
        rate = None
        if len(parts) == 3:
            if not parts[2].isdigit() or int(parts[2]) < 1:
                raise ConfigError(f"{ENV_TENANTS}: rate limit of {parts[0]!r} must be a positive integer")
            rate = int(parts[2])
        tenants.append(TenantKey(parts[0], parts[1], rate))
    names = [t.tenant for t in tenants]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigError(f"{ENV_TENANTS}: tenant(s) listed twice: {', '.join(duplicates)}")
    return tuple(tenants)


class JobsArchiveResource(dg.ConfigurableResource):
    """The DuckDB archive. `db_path` is the analyst-facing published copy; the single writer works on a
    private store beside it under a file lock and publishes by atomic rename (jobs_pipeline.archive)."""

    db_path: str = Field(default=DEFAULT_DB_PATH, description="Published archive file (analysts open it).")
    lock_timeout: float = Field(
        default=DEFAULT_LOCK_TIMEOUT, description="Seconds a writer waits for another writer before failing."
    )

    def exists(self) -> bool:
        return Path(self.db_path).expanduser().is_file()

    def open_for_reading(self) -> duckdb.DuckDBPyConnection:
        """Read-only connection on the published copy: never takes the writer lock. Close it."""
        return open_for_analysis(self.db_path)

    def writer(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        """The single-writer connection (flock, then publish on exit). Only assets in the pool use it."""
        return open_writer(self.db_path, lock_timeout=self.lock_timeout)


class DevanaApiResource(dg.ConfigurableResource):
    """The Devana Jobs API and the keys to read it with (one per tenant, each with its own rate budget)."""

    base_url: str = Field(default=DEFAULT_BASE_URL, description="API base URL ($DEVANA_API_URL).")
    api_key: str | None = Field(
        default=None,
        repr=False,
        description="Key of the single default tenant, bound to EnvVar('DEVANA_API_KEY'); unused when `tenants` is set.",
    )
    tenants: str = Field(
        default="",
        description="Several tenants: 'name:ENV_VAR_OF_ITS_KEY[:requests_per_minute],...' ($JOBS_PIPELINE_TENANTS).",
    )
    rate_limit: int = Field(
        default=DEFAULT_RATE_LIMIT_PER_MINUTE, description="Requests per minute allowed per key."
    )
    budget: int | None = Field(
        default=None,
        description="Most requests one sync may send per tenant; None: derived from rate and interval.",
    )
    poll_interval_seconds: float = Field(
        default=DEFAULT_POLL_INTERVAL_SECONDS,
        description="Seconds between scheduled syncs: sets the default budget and the freshness check's limit.",
    )
    timeout: float = Field(default=10.0, description="HTTP timeout per request, seconds.")
    recheck_running_after_seconds: float | None = Field(
        default=None,
        description="Economy for a shared rate limit: a running job out of the head page's reach is looked "
        "for only once unseen this long (final statuses arrive up to that much later, rounded up to the next "
        "sync). None: every sync.",
    )
    max_clock_skew_seconds: float | None = Field(
        default=300.0,
        description="A sync fails, writing nothing, when the API's Date header strays this far from the local "
        "clock. None: no comparison (a twin on simulated time).",
    )
    sync_deadline_seconds: float | None = Field(
        default=None,
        description="The whole sync, retries included, must end within this. None: the poll interval (at least 60 s).",
    )
    allow_insecure_http: bool = Field(
        default=False,
        description="Allow a plain http:// base URL to a non-loopback host (the key travels in clear text).",
    )

    def tenant_keys(self) -> tuple[TenantKey, ...]:
        explicit = parse_tenants(self.tenants)
        return explicit or (TenantKey(DEFAULT_TENANT, ENV_API_KEY),)

    def tenant_names(self) -> list[str]:
        return [t.tenant for t in self.tenant_keys()]

    def sync_configs(self, archive: JobsArchiveResource) -> list[SyncConfig]:
        """One SyncConfig per tenant, keys read now (errors name the env var, never show a value)."""
        configs = []
        explicit = bool(parse_tenants(self.tenants))
        for tenant in self.tenant_keys():
            key = os.environ.get(tenant.key_env, "") if explicit else (self.api_key or "")
            if not key.strip():
                raise ConfigError(
                    f"{tenant.key_env} is not set: export the API key of tenant {tenant.tenant!r}"
                )
            configs.append(
                SyncConfig(
                    base_url=self.base_url,
                    api_key=key.strip(),
                    db_path=Path(archive.db_path),
                    tenant=tenant.tenant,
                    poll_interval_seconds=self.poll_interval_seconds,
                    rate_limit=tenant.rate_limit or self.rate_limit,
                    budget=self.budget,
                    timeout=self.timeout,
                    lock_timeout=archive.lock_timeout,
                    recheck_running_after_seconds=self.recheck_running_after_seconds,
                    max_clock_skew_seconds=self.max_clock_skew_seconds,
                    deadline_seconds=self.sync_deadline_seconds,
                    allow_insecure_http=self.allow_insecure_http,
                )
            )
        return configs


def resources_from_env(environ: dict[str, str] | None = None) -> dict[str, dg.ConfigurableResource]:
    """The resources the code location runs with, configured from the environment (see module doc)."""
    env = dict(os.environ if environ is None else environ)
    tenants = env.get(ENV_TENANTS, "").strip()
    parse_tenants(tenants)  # fail at load time, with a clear message, on a malformed spec
    api = DevanaApiResource(
        base_url=env.get(ENV_API_URL) or DEFAULT_BASE_URL,
        # EnvVar: resolved when a run starts, shown as the variable's NAME in the UI, never its value.
        # Bound only when set: an unset EnvVar would fail every run that merely reads the archive;
        # without it, `capture` fails with "DEVANA_API_KEY is not set" (and its check says so).
        api_key=dg.EnvVar(ENV_API_KEY) if env.get(ENV_API_KEY, "").strip() and not tenants else None,
        tenants=tenants,
        poll_interval_seconds=float(env.get(ENV_POLL_INTERVAL) or DEFAULT_POLL_INTERVAL_SECONDS),
        # 0 turns the comparison with the local clock off (a twin on simulated time).
        max_clock_skew_seconds=float(env.get("JOBS_PIPELINE_MAX_CLOCK_SKEW") or 300.0) or None,
        allow_insecure_http=env.get("JOBS_PIPELINE_ALLOW_INSECURE_HTTP", "") in ("1", "true", "yes"),
    )
    archive = JobsArchiveResource(db_path=env.get(ENV_DB) or DEFAULT_DB_PATH)
    return {"api": api, "archive": archive}


@dg.definitions
def resources() -> dg.Definitions:
    # In-process executor: every step works on the same DuckDB archive and writers serialise anyway,
    # so a subprocess per step (the default) would only add start-up time.
    return dg.Definitions(resources=resources_from_env(), executor=dg.in_process_executor)
