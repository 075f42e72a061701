"""`jobs-pipeline` console script.

Each subcommand lives in its own module exposing `register(app)`. Heavy imports (dagster,
matplotlib, duckdb) stay inside the command functions so that `sync` starts fast and never
imports dagster.
"""

from __future__ import annotations

import typer

from jobs_pipeline.cli import (
    demo_cmd,
    query_cmd,
    report_cmd,
    sync_cmd,
    twin_cmd,
    wait_cmd,
    watch_cmd,
    webhook_cmd,
)

app = typer.Typer(
    name="jobs-pipeline",
    no_args_is_help=True,
    add_completion=False,
    help="Archive the Devana.ai Jobs API into DuckDB and compute statistics over its history.",
)

sync_cmd.register(app)
twin_cmd.register(app)
query_cmd.register(app)
demo_cmd.register(app)
report_cmd.register(app)
watch_cmd.register(app)
wait_cmd.register(app)
webhook_cmd.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
