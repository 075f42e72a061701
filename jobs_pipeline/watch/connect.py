"""The API client of the live views, configured like `sync`: key from DEVANA_API_KEY, URL from
--base-url, else DEVANA_API_URL, else the vendor's URL."""

from __future__ import annotations

import os

from jobs_pipeline.api.client import DEFAULT_BASE_URL, JobsClient


def base_url_from_env(base_url: str | None) -> str:
    return base_url or os.environ.get("DEVANA_API_URL") or DEFAULT_BASE_URL


def client_from_env(base_url: str | None, *, rate_limit: int = 100) -> JobsClient:
    """Raises jobs_pipeline.sync.ConfigError when DEVANA_API_KEY is not set (the CLI exits 2)."""
    from jobs_pipeline.sync import ConfigError

    key = os.environ.get("DEVANA_API_KEY", "").strip()
    if not key:
        raise ConfigError("DEVANA_API_KEY is not set: export the API key")
    # Plain http off loopback is refused here too (the key would travel in clear text), unless the
    # same opt-in as `sync --allow-insecure-http` is set in the environment.
    insecure = os.environ.get("JOBS_PIPELINE_ALLOW_INSECURE_HTTP", "") in ("1", "true", "yes")
    return JobsClient(base_url_from_env(base_url), key, rate_limit=rate_limit, allow_insecure_http=insecure)
