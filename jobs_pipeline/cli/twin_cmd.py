"""`jobs-pipeline twin ...`: run the API twin (a local simulator of the Devana Jobs API)."""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    twin = typer.Typer(help="The embedded Devana Jobs API twin (a local simulator).", no_args_is_help=True)
    twin.command("serve")(serve)
    app.add_typer(twin, name="twin")


def serve(
    port: Annotated[int, typer.Option(help="TCP port on 127.0.0.1 (0 picks a free one).")] = 8765,
    host: Annotated[str, typer.Option(help="Interface to bind (keep the loopback default).")] = "127.0.0.1",
    jobs_per_day: Annotated[
        float, typer.Option(help="Average jobs created per simulated day (0: empty twin).")
    ] = 6000,
    speed: Annotated[
        float, typer.Option(help="Simulated seconds per real second (1 = real time). Ignored with --stepped.")
    ] = 60,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same jobs.")] = 1,
    api_key: Annotated[
        list[str], typer.Option(help="Accepted Bearer key (repeat the option for several).")
    ] = ["demo-key"],  # noqa: B006 - typer needs a literal default
    history_hours: Annotated[
        float, typer.Option(help="Hours the simulated tenant has already been running at start.")
    ] = 26,
    start: Annotated[
        str | None,
        typer.Option(help="Simulated start instant, ISO-8601 UTC (default: now, whole second)."),
    ] = None,
    stepped: Annotated[
        bool,
        typer.Option(help="Freeze the clock; move it with POST /_twin/advance?seconds=N."),
    ] = False,
    fault_rate: Annotated[
        float, typer.Option(help="Probability that an API request gets an injected fault.")
    ] = 0.0,
    fault_kinds: Annotated[
        str,
        typer.Option(help="Comma-separated fault kinds to draw from (default: all kinds)."),
    ] = "",
    fault_timeout_seconds: Annotated[
        float, typer.Option(help="Stall of a 'timeout' fault before the (late) answer.")
    ] = 2.0,
    rate_limit: Annotated[
        int, typer.Option(help="Requests per key per window before 429 (0: no limit).")
    ] = 100,
    rate_window_seconds: Annotated[
        float, typer.Option(help="Sliding window of the rate limit, in real seconds.")
    ] = 60.0,
    retry_after_format: Annotated[
        str, typer.Option(help="Retry-After on 429: seconds, http-date, none or mixed.")
    ] = "seconds",
    clamp_over_limit: Annotated[
        bool, typer.Option(help="Clamp limit > 100 / offset > 1000 instead of answering 400.")
    ] = False,
    extra_fields: Annotated[
        bool, typer.Option(help="Add undocumented fields (priority, queue) to every job.")
    ] = False,
    date_header: Annotated[
        bool, typer.Option(help="Send the Date header (the simulated server clock).")
    ] = True,
    workers: Annotated[
        int | None, typer.Option(help="Worker pool size (default: sized for ~60 % utilisation).")
    ] = None,
    truth_retention_hours: Annotated[
        float, typer.Option(help="Hours of ground truth kept in memory (0: keep everything).")
    ] = 168.0,
    webhook_url: Annotated[
        str | None,
        typer.Option(help="POST every job transition to this URL (e.g. a `webhook serve` receiver)."),
    ] = None,
    webhook_loss: Annotated[float, typer.Option(help="Probability that an event is never sent.")] = 0.0,
    webhook_duplicate: Annotated[float, typer.Option(help="Probability that an event is sent twice.")] = 0.0,
    webhook_reorder: Annotated[
        float, typer.Option(help="Probability that an event is held back behind the next one.")
    ] = 0.0,
    webhook_max_delay: Annotated[
        float, typer.Option(help="Each event waits a random 0..N real seconds before it is sent.")
    ] = 0.0,
    webhook_secret_env: Annotated[
        str | None, typer.Option(help="Environment variable with the secret to sign events (HMAC-SHA256).")
    ] = None,
) -> None:
    """Serve GET /v1/jobs on HTTP until Ctrl-C; prints the base URL first.

    Control endpoints (no auth): GET /_twin/truth, GET /_twin/requests, GET /_twin/status,
    POST /_twin/advance?seconds=N (with --stepped), POST /_twin/faults?kind=K&n=N.
    """
    from datetime import UTC, datetime, timedelta

    from jobs_pipeline.twin import (
        AcceleratedClock,
        FaultConfig,
        Quirks,
        SteppedClock,
        Twin,
        TwinConfig,
    )
    from jobs_pipeline.twin.clock import Clock
    from jobs_pipeline.twin.config import FAULT_KINDS
    from jobs_pipeline.twin.server import TwinServer

    if start is None:
        start_at = datetime.now(UTC).replace(microsecond=0)
    else:
        start_at = datetime.fromisoformat(start.replace("Z", "+00:00"))
        if start_at.tzinfo is None:
            start_at = start_at.replace(tzinfo=UTC)
    kinds = tuple(kind.strip() for kind in fault_kinds.split(",") if kind.strip()) or FAULT_KINDS
    retention = timedelta(hours=truth_retention_hours) if truth_retention_hours > 0 else None
    try:
        config = TwinConfig(
            jobs_per_day=jobs_per_day,
            seed=seed,
            history_hours=history_hours,
            api_keys=tuple(api_key),
            rate_limit=rate_limit or None,
            rate_window_seconds=rate_window_seconds,
            retry_after_format=retry_after_format,
            faults=FaultConfig(rate=fault_rate, kinds=kinds, timeout_seconds=fault_timeout_seconds),
            quirks=Quirks(
                clamp_over_limit=clamp_over_limit, extra_fields=extra_fields, date_header=date_header
            ),
            workers=workers,
            truth_retention=max(retention, timedelta(hours=48)) if retention is not None else None,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    clock: Clock = SteppedClock(start_at) if stepped else AcceleratedClock(speed=speed, start=start_at)
    twin = Twin(config, clock=clock)
    if webhook_url is not None:
        import os

        from jobs_pipeline.twin.webhooks import WebhookDeliveryConfig

        secret = os.environ.get(webhook_secret_env, "") if webhook_secret_env else None
        if webhook_secret_env and not secret:
            raise typer.BadParameter(f"{webhook_secret_env} is not set")
        try:
            delivery = WebhookDeliveryConfig(
                url=webhook_url,
                loss=webhook_loss,
                duplicate=webhook_duplicate,
                reorder=webhook_reorder,
                max_delay_seconds=webhook_max_delay,
                seed=seed,
                secret=secret,
            )
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
        twin.deliver_webhooks(delivery)
    server = TwinServer(twin, host, port)
    mode = "stepped clock" if stepped else f"{speed:g}x clock"
    typer.echo(server.base_url, color=False)
    typer.echo(
        f"# Devana Jobs API twin: {jobs_per_day:g} jobs/day, {twin.workers} workers, {mode}, "
        f"keys {', '.join(api_key)}. Ctrl-C to stop.",
        err=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        typer.echo("# twin stopped", err=True)
