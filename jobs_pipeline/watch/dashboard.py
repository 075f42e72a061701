"""The live dashboard: fetch, update the board, render; in a `rich.live.Live` loop or once.

Rate budget: every refresh sends REQUESTS_PER_REFRESH = 2 requests (the newest `limit` jobs via
`api.monitor.job_statistics`, and the IN_PROGRESS list), through the client's process-wide
limiter. At the default 5 s interval that is 24 requests per minute, a quarter of the API's
100/minute for the key, leaving the rest to a sync running at the same time. The interval may
not go below MIN_INTERVAL_SECONDS = 2 s (the vendor doc's minimum between polls): 60 requests
per minute at most.

Transient API failures (after the client's own retries) do not stop the dashboard: the frame
shows the error and the next refresh tries again. A rejected key or URL (401/403/404/400) stops it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl
from rich.console import Console, RenderableType
from rich.live import Live

from jobs_pipeline.api.errors import ApiError, AuthError, BadRequestError, NotFoundError
from jobs_pipeline.api.models import MAX_LIMIT, JobStatus, Page
from jobs_pipeline.api.monitor import job_statistics
from jobs_pipeline.api.pagination import PageSource
from jobs_pipeline.watch.board import Board, Transition
from jobs_pipeline.watch.eta import estimate
from jobs_pipeline.watch.render import Frame, render

REQUESTS_PER_REFRESH = 2
MIN_INTERVAL_SECONDS = 2.0
DEFAULT_INTERVAL_SECONDS = 5.0
DEFAULT_LIMIT = 50


class _PageRecorder:
    """A PageSource that keeps the page it served: job_statistics counts it, the board reads it."""

    def __init__(self, source: PageSource) -> None:
        self.source = source
        self.page: Page | None = None

    def list_jobs(
        self,
        *,
        status: str | None = None,
        target_id: str | None = None,
        limit: int = MAX_LIMIT,
        offset: int = 0,
    ) -> Page:
        self.page = self.source.list_jobs(status=status, target_id=target_id, limit=limit, offset=offset)
        return self.page


@dataclass
class Dashboard:
    """One key's live view. `refresh()` fetches (2 requests) and updates; `frame()` renders."""

    client: PageSource
    source_label: str
    limit: int = DEFAULT_LIMIT
    interval: float = DEFAULT_INTERVAL_SECONDS
    history_curves: pl.DataFrame | None = None
    board: Board = field(init=False)
    last_error: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LIMIT}, got {self.limit}")
        if self.interval < MIN_INTERVAL_SECONDS:
            raise ValueError(f"interval must be at least {MIN_INTERVAL_SECONDS:g} s (the API doc's minimum)")
        self.board = Board(self.limit)

    def refresh(self) -> list[Transition]:
        recorder = _PageRecorder(self.client)
        statistics = job_statistics(recorder, limit=self.limit)
        assert recorder.page is not None
        running = self.client.list_jobs(status=JobStatus.IN_PROGRESS, limit=MAX_LIMIT)
        self.last_error = None
        return self.board.update(statistics, recorder.page, running)

    def frame(self) -> RenderableType:
        board = self.board
        estimates = (
            estimate(board.running, board.observed_at, self.history_curves)
            if board.observed_at is not None
            else {}
        )
        return render(
            Frame(
                board=board,
                estimates=estimates,
                source_label=self.source_label,
                interval=self.interval,
                requests_per_refresh=REQUESTS_PER_REFRESH,
                eta_from_history=self.history_curves is not None,
                last_error=self.last_error,
            )
        )


def run_once(dashboard: Dashboard, console: Console) -> None:
    """Fetch once and print one frame (API errors propagate)."""
    dashboard.refresh()
    console.print(dashboard.frame())


def run_live(
    dashboard: Dashboard,
    console: Console,
    *,
    sleep: Callable[[float], None] = time.sleep,
    max_refreshes: int | None = None,
) -> None:
    """Refresh every `dashboard.interval` seconds until Ctrl-C (or `max_refreshes`, for tests)."""
    refreshes = 0
    with Live(console=console, auto_refresh=False, transient=False) as live:
        while max_refreshes is None or refreshes < max_refreshes:
            try:
                dashboard.refresh()
            except (AuthError, BadRequestError, NotFoundError):
                raise  # a wrong key or URL will not heal by waiting
            except ApiError as exc:
                dashboard.last_error = str(exc)
            refreshes += 1
            live.update(dashboard.frame(), refresh=True)
            if max_refreshes is None or refreshes < max_refreshes:
                sleep(dashboard.interval)
