"""Show one awaited job's progress: a rich progress bar on a terminal, one line per change otherwise.

Used as `wait_for_job(..., on_update=presenter)`: the monitor calls it on first sight of the job
and on every change (status, progress, updatedAt). On a non-terminal (CI logs, pipes) each change
is one plain line, so a log shows the whole history without control characters.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn, TimeElapsedColumn

from jobs_pipeline.api.models import Job
from jobs_pipeline.safe_text import safe_text
from jobs_pipeline.watch.render import clock


def describe(job: Job) -> str:
    progress = f" {job.progress}%" if job.progress is not None else ""
    return safe_text(f"{clock(job.updated_at)} job {job.id} {job.type} {job.status}{progress}")


class JobProgress:
    """Context manager and `on_update` callback for one wait."""

    def __init__(self, console: Console, target_id: str, job_type: str | None) -> None:
        self.console = console
        self.target_id = target_id
        self.job_type = job_type
        self.updates: list[Job] = []
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> JobProgress:
        what = f"{self.job_type} job" if self.job_type else "job"
        if self.console.is_terminal:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TimeElapsedColumn(),
                console=self.console,
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(f"waiting for a {what} on {self.target_id}", total=100)
        else:
            self.console.print(f"waiting for a {what} on {self.target_id}", highlight=False)
        return self

    def __call__(self, job: Job) -> None:
        self.updates.append(job)
        if self._progress is not None and self._task is not None:
            self._progress.update(
                self._task,
                # TextColumn parses markup: the API's strings are escaped for it as well.
                description=escape(safe_text(f"job {job.id} {job.type} {job.status}")),
                completed=100 if job.status == "DONE" else (job.progress or 0),
            )
        else:
            self.console.print(describe(job), highlight=False, markup=False, soft_wrap=True)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
