"""`jobs-pipeline demo`: the README's first command (no key, no network)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from jobs_pipeline.archive.paths import ArchivePaths


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    out: Annotated[Path, typer.Option(help="Folder for the archive and the report (replaced).")] = Path(
        "demo-output"
    ),
    days: Annotated[float, typer.Option(help="Days of accelerated history to archive.")] = 3.0,
    jobs_per_day: Annotated[int, typer.Option(help="Twin load.")] = 3000,
    poll_minutes: Annotated[float, typer.Option(help="Twin minutes between syncs.")] = 40.0,
    seed: Annotated[int, typer.Option(help="Twin seed (same seed, same history).")] = 42,
) -> None:
    """Run the whole pipeline on the embedded API twin: syncs over days of history, statistics, report."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from jobs_pipeline.demo import DemoSettings, run_demo

    console = Console()
    console.print(
        f"[bold]jobs_pipeline demo[/]: the API twin on 127.0.0.1 with {days:g} days of history at "
        f"{jobs_per_day:,} jobs/day (a 1,500-job burst included), a sync every {poll_minutes:g} twin minutes."
    )
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        syncs = progress.add_task("syncs", total=None)
        steps = progress.add_task("statistics, report", total=2)

        def on_sync(done: int, total: int) -> None:
            progress.update(syncs, completed=done, total=total)

        def on_step(label: str) -> None:
            progress.update(steps, description=label, advance=1 if label == "report" else 0)

        result = run_demo(
            DemoSettings(out=out, days=days, jobs_per_day=jobs_per_day, poll_minutes=poll_minutes, seed=seed),
            on_sync=on_sync,
            on_step=on_step,
        )
        progress.update(steps, completed=2)
    db = result.db
    console.print(
        f"\n[bold green]Done in {result.seconds:.0f} s.[/] {result.syncs} syncs sent {result.requests:,} requests "
        f"and archived {result.jobs:,} jobs ({result.snapshots:,} snapshots, {result.changes:,} status changes, "
        f"{result.killed} KILLED); {result.gaps} syncs recorded coverage gaps (the burst)."
    )
    if result.webhook_events:
        console.print(
            f"Webhook events (last hours): {result.webhook_events:,} applied, "
            f"{result.killed_exact} kills dated exactly instead of inferred."
        )
    console.print(
        f"\n[bold]Where things are[/]\n  archive (open it read-only): {db}\n"
        f"  sealed history (Parquet, readable without DuckDB): {_shown(ArchivePaths.for_db(db).sealed_root)}\n"
        f"  HTML report: {result.report}"
    )
    # One label line, then the command alone on its line, never wrapped (soft_wrap): pasteable at any width.
    console.print("\n[bold]What to try next[/] (each command on one line)")
    for label, command in next_steps(db, result.report):
        console.print(f"  {label}:", highlight=False)
        console.print(f"    {command}", soft_wrap=True, markup=False, highlight=False)


def next_steps(db: Path, report: Path) -> list[tuple[str, str]]:
    """The demo's hints: (label, one shell command). The Dagster one is the README's `make dagster`."""
    default_db = Path("demo-output") / "archive.duckdb"
    on_db = "" if db.resolve() == default_db.resolve() else f"JOBS_PIPELINE_DB={db} "
    return [
        ("open the report (or open it in any browser)", f"xdg-open {report}"),
        (
            "query the archive",
            f'.venv/bin/jobs-pipeline query --db {db} "SELECT job_type, count(*) FROM jobs GROUP BY 1"',
        ),
        (
            "p95 run time per type, as CSV",
            f'.venv/bin/jobs-pipeline query --db {db} --format csv "SELECT * FROM daily_run_time LIMIT 10"',
        ),
        ("Dagster UI (Ctrl-C stops it)", f"{on_db}make dagster"),
        (
            "the notebook (or open it in your editor with the .venv kernel)",
            f"JOBS_PIPELINE_DB={db} .venv/bin/jupyter-execute notebooks/explore.ipynb",
        ),
        ("a live view of the twin: start it", ".venv/bin/jobs-pipeline twin serve --speed 60"),
        (
            "... then, in another shell",
            "DEVANA_API_URL=http://127.0.0.1:8765 DEVANA_API_KEY=demo-key .venv/bin/jobs-pipeline watch",
        ),
    ]


def _shown(path: Path) -> str:
    """A path as short as the user's own --out spelling (relative when under the current directory)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
