"""`jobs-pipeline report`: write the archive's self-contained HTML report to a file."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from jobs_pipeline.cli.errors import EXIT_CONFIG, exit_on_error


def register(app: typer.Typer) -> None:
    app.command("report")(report)


def report(
    db: Annotated[
        Path | None,
        typer.Option(help="Archive file. Default: $JOBS_PIPELINE_DB, else ./jobs_archive.duckdb."),
    ] = None,
    out: Annotated[Path, typer.Option(help="HTML file to write (replaced atomically).")] = Path(
        "report.html"
    ),
    tenant: Annotated[
        str | None, typer.Option(help="Only this tenant (default: every tenant, one section each).")
    ] = None,
    days: Annotated[int, typer.Option(min=1, help="Days of history before the latest observation.")] = 7,
    top: Annotated[int, typer.Option(min=1, help="Rows of the slowest- and failing-jobs tables.")] = 15,
    title: Annotated[str, typer.Option(help="Title of the page.")] = "Devana jobs report",
) -> None:
    """Write an HTML report (inline charts and CSS, opens offline) from the published archive.

    Reads the analysts' read-only copy: it never blocks or waits for a running sync.
    """
    from jobs_pipeline.archive import open_for_analysis
    from jobs_pipeline.report import build_report
    from jobs_pipeline.sync import DEFAULT_DB_PATH

    db_path = db or Path(os.environ.get("JOBS_PIPELINE_DB") or DEFAULT_DB_PATH)
    with exit_on_error():
        with open_for_analysis(db_path) as conn:
            html = build_report(conn, tenant=tenant, days=days, top_n=top, title=title)
        try:
            _write_atomically(out, html)
        except OSError as exc:
            sys.stderr.write(f"error: cannot write {out}: {exc.strerror or exc}\n")
            raise typer.Exit(EXIT_CONFIG) from exc
    size_kb = len(html.encode("utf-8")) / 1024
    sys.stdout.write(f"report written to {out} ({size_kb:,.0f} KB)\n")


def _write_atomically(path: Path, text: str) -> None:
    # A browser or a web server reading the previous report never sees a half-written file.
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temp.write_text(text, encoding="utf-8")
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
