"""The dashboard's frame as rich renderables: counts, running jobs with progress and ETA, transitions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from jobs_pipeline.api.models import QUERYABLE_STATUSES, JobStatus
from jobs_pipeline.safe_text import safe_text
from jobs_pipeline.watch.board import OUT_OF_VIEW, Board
from jobs_pipeline.watch.eta import Estimate

STATUS_STYLES: dict[str, str] = {
    JobStatus.PENDING: "yellow",
    JobStatus.IN_PROGRESS: "cyan",
    JobStatus.DONE: "green",
    JobStatus.ERROR: "bold red",
    OUT_OF_VIEW: "dim",
}
MAX_RUNNING_ROWS = 20


@dataclass(frozen=True)
class Frame:
    board: Board
    estimates: dict[str, Estimate]
    source_label: str  # the API base URL
    interval: float
    requests_per_refresh: int
    eta_from_history: bool
    last_error: str | None = None


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def clock(instant: datetime | None) -> str:
    return instant.strftime("%H:%M:%SZ") if instant is not None else "—"


def status_text(status: str | None) -> Text:
    if status is None:
        return Text("new", style="magenta")
    return Text(safe_text(status), style=STATUS_STYLES.get(status, ""))


def api_text(value: str | None) -> Text:
    """A string from the API as a table cell: control characters escaped, no Rich markup parsed."""
    return Text(safe_text(value))


def render(frame: Frame) -> RenderableType:
    return Group(_header(frame), _counts(frame), _running(frame), _transitions(frame))


def _header(frame: Frame) -> RenderableType:
    board = frame.board
    per_minute = frame.requests_per_refresh * 60.0 / frame.interval
    line = Text.assemble(
        ("Devana jobs ", "bold"),
        (safe_text(frame.source_label), "underline"),
        f"  server time {clock(board.observed_at)}  refresh #{board.refreshes} every {frame.interval:g}s, ",
        f"{frame.requests_per_refresh} requests each (~{per_minute:.0f}/min)",
    )
    if frame.last_error:
        line.append(f"\nlast refresh failed: {safe_text(frame.last_error)}", style="bold red")
    return Panel(line, expand=True)


def _counts(frame: Frame) -> RenderableType:
    stats = frame.board.statistics
    table = Table(title=f"Newest {frame.board.limit} jobs by status", title_justify="left", expand=False)
    statuses = list(QUERYABLE_STATUSES)
    if stats is not None:
        statuses += sorted(set(stats.by_status) - set(QUERYABLE_STATUSES))
    for status in statuses:
        table.add_column(status, justify="right", style=STATUS_STYLES.get(status, ""))
    table.add_column("total", justify="right", style="bold")
    table.add_column("running now (all)", justify="right", style="cyan")
    if stats is None:
        return table
    running = f"{len(frame.board.running)}{'' if frame.board.running_complete else '+'}"
    table.add_row(*(str(stats.by_status.get(s, 0)) for s in statuses), str(stats.total), running)
    return table


def _running(frame: Frame) -> RenderableType:
    board = frame.board
    source = "progress and 7-day history" if frame.eta_from_history else "progress (elapsed / progress)"
    table = Table(title=f"Running jobs (ETA from {source})", title_justify="left", expand=False)
    table.add_column("job")
    table.add_column("type")
    table.add_column("target")
    table.add_column("progress", min_width=28)
    table.add_column("elapsed", justify="right")
    table.add_column("ETA", justify="right")
    table.add_column("done at", justify="right")
    for job in board.running[:MAX_RUNNING_ROWS]:
        estimate = frame.estimates.get(job.id)
        if job.progress is None:
            progress: RenderableType = Text("no progress reported", style="dim")
        else:
            progress = Table.grid(padding=(0, 1))
            progress.add_row(ProgressBar(total=100, completed=job.progress, width=20), f"{job.progress:>3d}%")
        remaining = estimate.remaining_s if estimate else None
        finish = (
            clock(board.observed_at + timedelta(seconds=remaining))
            if remaining is not None and board.observed_at is not None
            else "—"
        )
        eta = duration(remaining) + (f" ({estimate.source})" if estimate and estimate.source else "")
        table.add_row(
            api_text(job.id),
            api_text(job.type),
            api_text(job.target_id),
            progress,
            duration(estimate.elapsed_s if estimate else None),
            eta,
            finish,
        )
    hidden = len(board.running) - MAX_RUNNING_ROWS
    if hidden > 0:
        table.caption = f"… and {hidden} more running"
    return table


def _transitions(frame: Frame) -> RenderableType:
    table = Table(title="Transitions", title_justify="left", expand=False)
    table.add_column("at", justify="right")
    table.add_column("job")
    table.add_column("type")
    table.add_column("change")
    for transition in reversed(frame.board.transitions):  # newest first
        change = Text.assemble(status_text(transition.from_status), " -> ", status_text(transition.to_status))
        table.add_row(
            clock(transition.at), api_text(transition.job_id), api_text(transition.job_type), change
        )
    if not frame.board.transitions:
        table.caption = "none yet: changes between refreshes appear here"
    return table
