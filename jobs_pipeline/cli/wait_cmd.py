"""`jobs-pipeline wait`: the vendor's JobMonitor.wait_for_job as a command, via api.monitor.

Exit codes (for scripts): 0 the job ended DONE; 1 it ended ERROR, or vanished from the API while
active (the API hides KILLED jobs); 124 the timeout passed first (like coreutils `timeout`),
whether or not a job had appeared. Configuration errors exit 2 and API failures 1, as for
every command (cli/errors.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from jobs_pipeline.cli.errors import exit_on_error
from jobs_pipeline.safe_text import safe_text

if TYPE_CHECKING:
    from rich.console import Console

    from jobs_pipeline.api.pagination import PageSource

EXIT_DONE = 0
EXIT_FAILED = 1
EXIT_TIMEOUT = 124


def register(app: typer.Typer) -> None:
    app.command("wait")(wait)


def wait(
    target: Annotated[str, typer.Option(help="The resource (document, folder, ...) whose job to wait for.")],
    job_type: Annotated[
        str | None,
        typer.Option(
            "--type", help="Only a job of this type (EXTRACTION, EMBEDDING, ...), filtered on our side."
        ),
    ] = None,
    timeout: Annotated[float, typer.Option(min=0.0, help="Seconds before giving up (exit 124).")] = 300.0,
    poll_interval: Annotated[
        float,
        typer.Option(min=2.0, help="Seconds between polls (2 s minimum; backs off while nothing changes)."),
    ] = 2.0,
    base_url: Annotated[
        str | None,
        typer.Option(help="API base URL. Default: $DEVANA_API_URL, else https://api.devana.ai."),
    ] = None,
) -> None:
    """Wait for the newest job of a target to finish: exit 0 on DONE, 1 on ERROR, 124 on timeout.

    Progress is a bar on a terminal, one line per change otherwise. Key from $DEVANA_API_KEY.

    A job that vanishes from the API while active (KILLED: the API hides those) also exits 1.
    """
    from rich.console import Console

    from jobs_pipeline.watch.connect import client_from_env

    with exit_on_error(), client_from_env(base_url) as client:
        code = run_wait(
            client,
            target,
            job_type=job_type,
            timeout=timeout,
            poll_interval=poll_interval,
            console=Console(),
            err_console=Console(stderr=True),
        )
    raise typer.Exit(code)


def run_wait(
    client: PageSource,
    target_id: str,
    *,
    job_type: str | None,
    timeout: float,
    poll_interval: float,
    console: Console,
    err_console: Console,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Wait and report; returns the exit code. `sleep`/`clock` are injectable (tests use the twin's clock)."""
    from jobs_pipeline.api.monitor import JobFailedError, JobVanishedError, WaitTimeoutError, wait_for_job
    from jobs_pipeline.watch.follow import JobProgress, describe

    started = clock()
    try:
        with JobProgress(console, target_id, job_type) as progress:
            job = wait_for_job(
                client,
                target_id,
                job_type=job_type,
                timeout=timeout,
                poll_interval=poll_interval,
                on_update=progress,
                sleep=sleep,
                clock=clock,
            )
    except JobFailedError as exc:
        err_console.print(f"failed: {safe_text(exc)}", highlight=False, markup=False, soft_wrap=True)
        return EXIT_FAILED
    except JobVanishedError as exc:
        err_console.print(f"vanished: {safe_text(exc)}", highlight=False, markup=False, soft_wrap=True)
        return EXIT_FAILED
    except WaitTimeoutError as exc:
        err_console.print(f"timeout: {safe_text(exc)}", highlight=False, markup=False, soft_wrap=True)
        return EXIT_TIMEOUT
    console.print(
        f"done: {describe(job)} (waited {clock() - started:.0f} s)",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    return EXIT_DONE
