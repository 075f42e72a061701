"""`jobs-pipeline webhook ...`: receive the vendor's job-status events into the archive's spool."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from jobs_pipeline.cli.errors import exit_on_error


def register(app: typer.Typer) -> None:
    webhook = typer.Typer(
        help="Webhook job-status events (an optional input besides polling).", no_args_is_help=True
    )
    webhook.command("serve")(serve)
    webhook.command("status")(status)
    app.add_typer(webhook, name="webhook")


def serve(
    db: Annotated[
        Path | None,
        typer.Option(
            help="Archive whose next sync applies the events. Default: $JOBS_PIPELINE_DB, else ./jobs_archive.duckdb."
        ),
    ] = None,
    host: Annotated[
        str, typer.Option(help="Interface to bind (put a TLS terminator in front to expose it).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8787,
    tenant: Annotated[
        str, typer.Option(help="Tenant whose sync applies these events (one receiver per tenant).")
    ] = "default",
    path: Annotated[str, typer.Option(help="URL path events are POSTed to.")] = "/webhook/job-status",
    secret_env: Annotated[
        str | None,
        typer.Option(
            help="Environment variable holding the shared secret; events without a valid signature are refused."
        ),
    ] = None,
    auth: Annotated[
        str,
        typer.Option(
            help="With a secret: hmac (X-Webhook-Signature: sha256=<hex>) or bearer (Authorization)."
        ),
    ] = "hmac",
    max_body_bytes: Annotated[int, typer.Option(help="Largest body accepted (413 beyond).")] = 256 * 1024,
) -> None:
    """Receive POSTed job-status events; answer 200 once each is fsync'd in the spool beside the archive."""
    import uvicorn

    from jobs_pipeline.sync import DEFAULT_DB_PATH, ConfigError
    from jobs_pipeline.webhook.auth import Authenticator
    from jobs_pipeline.webhook.receiver import ReceiverSettings, build_app
    from jobs_pipeline.webhook.spool import spool_dir_for

    with exit_on_error():
        authenticator = None
        if secret_env is not None:
            secret = os.environ.get(secret_env, "")
            if not secret:
                raise ConfigError(f"{secret_env} is not set: export the webhook secret or drop --secret-env")
            authenticator = Authenticator(secret, auth)
        if max_body_bytes < 1:
            raise ConfigError(f"--max-body-bytes must be positive, got {max_body_bytes}")
        if not path.startswith("/"):
            raise ConfigError(f"--path must start with '/', got {path!r}")
        archive = db or Path(os.environ.get("JOBS_PIPELINE_DB") or DEFAULT_DB_PATH)
        spool = spool_dir_for(archive, tenant)
        app = build_app(
            ReceiverSettings(spool_dir=spool, path=path, max_body_bytes=max_body_bytes, auth=authenticator)
        )
    sys.stderr.write(
        f"# webhook receiver on http://{host}:{port}{path}, spooling to {spool} "
        f"({'signed: ' + auth if authenticator else 'no authentication'}). Ctrl-C to stop.\n"
    )
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


def status(
    db: Annotated[
        Path | None, typer.Option(help="Archive. Default: $JOBS_PIPELINE_DB, else ./jobs_archive.duckdb.")
    ] = None,
    tenant: Annotated[str, typer.Option(help="Tenant of the receiver.")] = "default",
) -> None:
    """Print how many received events no sync has applied yet, and the age of the oldest."""
    from datetime import UTC, datetime

    from jobs_pipeline.sync import DEFAULT_DB_PATH
    from jobs_pipeline.webhook.spool import spool_depth, spool_dir_for

    archive = db or Path(os.environ.get("JOBS_PIPELINE_DB") or DEFAULT_DB_PATH)
    with exit_on_error():
        depth, oldest = spool_depth(spool_dir_for(archive, tenant))
    age = (
        ""
        if oldest is None
        else f", oldest received {(datetime.now(UTC) - oldest).total_seconds():.0f} s ago"
    )
    sys.stdout.write(f"{depth} event(s) waiting for a sync{age}\n")
