"""`jobs-pipeline watch`: a live terminal dashboard of the API (counts, running jobs, transitions)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from jobs_pipeline.cli.errors import exit_on_error


def register(app: typer.Typer) -> None:
    app.command("watch")(watch)


def watch(
    base_url: Annotated[
        str | None,
        typer.Option(help="API base URL. Default: $DEVANA_API_URL, else https://api.devana.ai."),
    ] = None,
    interval: Annotated[
        float, typer.Option(min=2.0, help="Seconds between refreshes (2 requests each; 2 s minimum).")
    ] = 5.0,
    limit: Annotated[int, typer.Option(min=1, max=100, help="Newest jobs counted by status.")] = 50,
    once: Annotated[bool, typer.Option("--once", help="Render one frame and exit.")] = False,
    db: Annotated[
        Path | None,
        typer.Option(
            help="Archive whose last 7 days sharpen the ETAs. Default: $JOBS_PIPELINE_DB if it exists; "
            "without one, ETAs come from progress alone."
        ),
    ] = None,
    tenant: Annotated[str, typer.Option(help="Tenant of that archive.")] = "default",
    rate_limit: Annotated[int, typer.Option(help="Requests per minute the API allows this key.")] = 100,
) -> None:
    """Live dashboard of the API: counts by status, running jobs with progress and ETA, transitions.

    Transitions (job X PENDING -> IN_PROGRESS) appear as they happen. Key from $DEVANA_API_KEY.

    Each refresh sends 2 requests (24 a minute at the default 5 s) through the key's shared limiter.
    """
    from rich.console import Console

    from jobs_pipeline.watch.connect import client_from_env
    from jobs_pipeline.watch.dashboard import Dashboard, run_live, run_once
    from jobs_pipeline.watch.eta import load_history_curves

    console = Console()
    with exit_on_error():
        archive = db or _env_archive()
        curves = load_history_curves(archive, tenant) if archive is not None else None
        with client_from_env(base_url, rate_limit=rate_limit) as client:
            dashboard = Dashboard(
                client, client.base_url, limit=limit, interval=interval, history_curves=curves
            )
            if once:
                run_once(dashboard, console)
                return
            try:
                run_live(dashboard, console)
            except KeyboardInterrupt:
                console.print("stopped", style="dim")


def _env_archive() -> Path | None:
    value = os.environ.get("JOBS_PIPELINE_DB")
    return Path(value) if value and Path(value).exists() else None
