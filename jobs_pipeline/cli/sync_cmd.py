"""`jobs-pipeline sync`: one sync, a one-line summary, a non-zero exit with a one-line error."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from jobs_pipeline.cli.errors import exit_on_error


def register(app: typer.Typer) -> None:
    app.command("sync")(sync)


def sync(
    base_url: Annotated[
        str | None,
        typer.Option(help="API base URL. Default: $DEVANA_API_URL, else https://api.devana.ai."),
    ] = None,
    db: Annotated[
        Path | None,
        typer.Option(
            help="Archive file analysts open. Default: $JOBS_PIPELINE_DB, else ./jobs_archive.duckdb."
        ),
    ] = None,
    tenant: Annotated[str, typer.Option(help="Name under which this key's jobs are archived.")] = "default",
    poll_interval: Annotated[
        float, typer.Option(help="Seconds between syncs; sets the default request budget.")
    ] = 300.0,
    budget: Annotated[
        int | None,
        typer.Option(help="Most requests this sync may send. Default: 90% of the rate limit per interval."),
    ] = None,
    rate_limit: Annotated[int, typer.Option(help="Requests per minute the API allows this key.")] = 100,
    recheck_running_after: Annotated[
        float | None,
        typer.Option(
            help="Economy for a shared rate limit: look for a running job the head page does not "
            "reach only once it has gone this many seconds unseen (its final status arrives up to "
            "that much later, rounded up to the next sync; timestamps still exact). Default: every sync."
        ),
    ] = None,
    lock_timeout: Annotated[float, typer.Option(help="Seconds to wait for another sync to finish.")] = 120.0,
    max_clock_skew: Annotated[
        float,
        typer.Option(
            help="Seconds the API's Date header may stray from this machine's clock; beyond, the sync "
            "fails and writes nothing. 0: no comparison (a twin on simulated time)."
        ),
    ] = 300.0,
    deadline: Annotated[
        float | None,
        typer.Option(
            help="Seconds the whole sync (retries included) may take. Default: the poll interval, at least 60."
        ),
    ] = None,
    allow_insecure_http: Annotated[
        bool,
        typer.Option(
            "--allow-insecure-http",
            help="Send the key over plain http to a non-loopback host (also $JOBS_PIPELINE_ALLOW_INSECURE_HTTP=1).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Run one sync: fetch what changed since the last one and archive it (key from $DEVANA_API_KEY)."""
    from jobs_pipeline.sync import SyncConfig, run_sync

    with exit_on_error():
        config = SyncConfig.from_env(
            base_url=base_url,
            db_path=db,
            tenant=tenant,
            poll_interval_seconds=poll_interval,
            budget=budget,
            rate_limit=rate_limit,
            lock_timeout=lock_timeout,
            recheck_running_after_seconds=recheck_running_after,
            max_clock_skew_seconds=max_clock_skew or None,
            deadline_seconds=deadline,
            allow_insecure_http=allow_insecure_http,
        )
        summary = run_sync(config)
    if as_json:
        sys.stdout.write(json.dumps(_as_dict(summary), default=str) + "\n")
    else:
        sys.stdout.write(summary.one_line() + "\n")


def _as_dict(summary: object) -> dict[str, object]:
    from dataclasses import asdict

    data = asdict(summary)  # type: ignore[call-overload]
    data["gaps"] = [g.as_json() for g in summary.gaps]  # type: ignore[attr-defined]
    return data
