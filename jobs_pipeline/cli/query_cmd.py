"""`jobs-pipeline query`: run SQL on the archive's published copy, read-only (no DuckDB CLI needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from jobs_pipeline.cli.errors import exit_on_error


def register(app: typer.Typer) -> None:
    app.command("query")(query)


def query(
    sql: Annotated[str, typer.Argument(help="A SQL query on the archive's tables and views.")],
    db: Annotated[
        Path | None,
        typer.Option(help="Archive file. Default: $JOBS_PIPELINE_DB, else ./jobs_archive.duckdb."),
    ] = None,
    limit: Annotated[int, typer.Option(help="Rows to print at most.")] = 50,
) -> None:
    """Print the result of a read-only SQL query as a table. It never blocks a running sync."""
    import os

    import duckdb
    from rich.console import Console
    from rich.table import Column, Table

    from jobs_pipeline.archive import open_for_analysis
    from jobs_pipeline.sync import DEFAULT_DB_PATH

    path = db or Path(os.environ.get("JOBS_PIPELINE_DB") or DEFAULT_DB_PATH)
    with exit_on_error(), open_for_analysis(path) as conn:
        try:
            cursor = conn.execute(sql)
        except duckdb.Error as exc:
            raise ValueError(f"query failed: {exc}") from exc
        names = [d[0] for d in cursor.description or []]
        rows = cursor.fetchall()
    from rich.text import Text

    from jobs_pipeline.safe_text import safe_text

    # Archived strings came from the API: shown escaped, never as markup or terminal controls.
    table = Table(*(Column(header=Text(safe_text(n))) for n in names))
    for row in rows[:limit]:
        table.add_row(*(Text("" if v is None else safe_text(v)) for v in row))
    console = Console()
    console.print(table)
    if len(rows) > limit:
        console.print(f"({len(rows) - limit:,} more rows; use --limit)")
