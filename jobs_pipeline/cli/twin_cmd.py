"""`jobs-pipeline twin ...`: run the API twin (owned by the twin's author)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    twin = typer.Typer(help="The embedded Devana Jobs API twin (a local simulator).", no_args_is_help=True)
    app.add_typer(twin, name="twin")
