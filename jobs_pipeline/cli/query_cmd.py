"""`jobs-pipeline query`: run SQL on the archive's published copy, read-only (no DuckDB CLI needed)."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from datetime import date, datetime, time
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from jobs_pipeline.cli.errors import exit_on_error


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def register(app: typer.Typer) -> None:
    app.command("query")(query)


def query(
    sql: Annotated[str, typer.Argument(help="A SQL query on the archive's tables and views.")],
    db: Annotated[
        Path | None,
        typer.Option(help="Archive file. Default: $JOBS_PIPELINE_DB, else ./jobs_archive.duckdb."),
    ] = None,
    limit: Annotated[
        int, typer.Option(help="Rows to print at most (table only; csv and json print all).")
    ] = 50,
    output: Annotated[
        OutputFormat,
        typer.Option(
            "--format",
            "-f",
            help="table (rounded, for reading), csv or json (every row, full precision, for tools).",
        ),
    ] = OutputFormat.table,
    digits: Annotated[int, typer.Option(help="Decimals shown for floats in the table.")] = 3,
    wide: Annotated[
        bool,
        typer.Option(
            "--wide",
            "-w",
            help="Never fold or cut cells: one line per row, however wide "
            "(the default on a pipe; on a terminal the table fits its width).",
        ),
    ] = False,
) -> None:
    """Print the result of a read-only SQL query. It never blocks a running sync."""
    import os

    import duckdb

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
    if output is OutputFormat.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(names)
        writer.writerows([[_csv_cell(v) for v in row] for row in rows])
    elif output is OutputFormat.json:
        json.dump(
            [dict(zip(names, row, strict=True)) for row in rows], sys.stdout, default=_json_value, indent=1
        )
        sys.stdout.write("\n")
    else:
        _print_table(names, rows, limit=limit, digits=digits, wide=wide)


def _print_table(
    names: Sequence[str], rows: Sequence[tuple[Any, ...]], *, limit: int, digits: int, wide: bool
) -> None:
    from rich.console import Console
    from rich.table import Column, Table
    from rich.text import Text

    from jobs_pipeline.safe_text import safe_text

    # Off a terminal rich would assume 80 columns and cut every cell: a pipe gets whole lines.
    fit = sys.stdout.isatty() and not wide
    console = Console(width=None if fit else 100_000, soft_wrap=not fit)
    # Archived strings came from the API: shown escaped, never as markup or terminal controls.
    table = Table(*(Column(header=Text(safe_text(n))) for n in names))
    for column in table.columns:
        column.overflow = "fold"  # a cell never loses characters, at worst it folds
        column.no_wrap = not fit
    for row in rows[:limit]:
        table.add_row(*(Text(safe_text(_display(v, digits))) for v in row))
    console.print(table)
    if len(rows) > limit:
        console.print(f"({len(rows) - limit:,} more rows; use --limit, or --format csv|json for all)")


def _display(value: object, digits: int) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.{digits}f}" if value == value and abs(value) != float("inf") else str(value)
    if isinstance(value, Decimal):
        return f"{value:,.{digits}f}"
    return str(value)


def _csv_cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, default=_json_value)
    return value


def _json_value(value: object) -> object:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return str(value)
