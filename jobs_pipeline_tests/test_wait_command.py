"""`jobs-pipeline wait`: api.monitor.wait_for_job as a command, against the twin on a stepped clock.

The wait's sleep advances the twin's clock (and its monotonic clock reads it), so a five-minute
job is awaited in milliseconds, and every poll sees the world a poll interval later.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta

import pytest
from rich.console import Console
from typer.testing import CliRunner

from jobs_pipeline.api.client import JobsClient
from jobs_pipeline.cli.main import app
from jobs_pipeline.cli.wait_cmd import EXIT_DONE, EXIT_FAILED, EXIT_TIMEOUT, run_wait
from jobs_pipeline_tests.conftest import TWIN_KEY, MakeTwin, ServedTwin


@pytest.fixture
def quiet(make_twin: MakeTwin) -> ServedTwin:
    return make_twin(jobs_per_day=0, rate_limit=None)


@pytest.fixture
def client(quiet: ServedTwin) -> Iterator[JobsClient]:
    with JobsClient(quiet.base_url, TWIN_KEY, rate_limit=100_000) as jobs_client:
        yield jobs_client


class Waiter:
    """Runs run_wait with the twin's clock as its clock and sleep, capturing both consoles."""

    def __init__(self, served: ServedTwin, client: JobsClient, *, terminal: bool = False) -> None:
        self.served = served
        self.client = client
        self.out = io.StringIO()
        self.err = io.StringIO()
        self.sleeps: list[float] = []
        self.terminal = terminal

    def clock(self) -> float:
        return self.served.clock.now().timestamp()

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.served.clock.advance(timedelta(seconds=seconds))

    def __call__(self, target: str, job_type: str | None = None, timeout: float = 600.0) -> int:
        return run_wait(
            self.client,
            target,
            job_type=job_type,
            timeout=timeout,
            poll_interval=2.0,
            console=Console(file=self.out, width=200, force_terminal=self.terminal),
            err_console=Console(file=self.err, width=200),
            sleep=self.sleep,
            clock=self.clock,
        )

    @property
    def lines(self) -> list[str]:
        return self.out.getvalue().splitlines()


def test_done_exits_zero_with_a_line_per_change(quiet: ServedTwin, client: JobsClient) -> None:
    job_id = quiet.twin.add_job("EXTRACTION", target_id="doc-1", queue_seconds=10, run_seconds=90)
    wait = Waiter(quiet, client)
    assert wait("doc-1", job_type="EXTRACTION") == EXIT_DONE
    lines = wait.lines
    assert lines[0] == "waiting for a EXTRACTION job on doc-1"
    statuses = [line.split()[4] for line in lines[1:-1]]
    assert statuses[0] == "PENDING" and statuses[-1] == "DONE"
    assert "IN_PROGRESS" in statuses
    progress = [int(line.split()[5].rstrip("%")) for line in lines[1:-1] if line.split()[4] == "IN_PROGRESS"]
    assert progress == sorted(progress)  # one line per change, in order
    assert all(job_id in line for line in lines[1:])
    assert lines[-1].startswith("done: ") and "DONE 100%" in lines[-1]
    assert min(wait.sleeps) >= 2.0  # the vendor doc's minimum between polls
    # Only GET /v1/jobs?targetId=doc-1, never the job type as the API's `type` (a status filter).
    assert {tuple(sorted(r.query)) for r in quiet.twin.requests} == {("limit", "offset", "targetId")}


def test_error_exits_one_with_the_error(quiet: ServedTwin, client: JobsClient) -> None:
    quiet.twin.add_job(
        "GENERATION", target_id="doc-2", run_seconds=30, outcome="ERROR", error="context too long"
    )
    wait = Waiter(quiet, client)
    assert wait("doc-2") == EXIT_FAILED
    assert "failed:" in wait.err.getvalue() and "context too long" in wait.err.getvalue()
    assert wait.lines[-1].split()[4] == "ERROR"


def test_a_killed_job_exits_one(quiet: ServedTwin, client: JobsClient) -> None:
    quiet.twin.add_job("SYNC", target_id="folder-1", run_seconds=600, kill_after_seconds=60)
    wait = Waiter(quiet, client)
    assert wait("folder-1") == EXIT_FAILED
    assert "vanished:" in wait.err.getvalue() and "KILLED" in wait.err.getvalue()


def test_timeout_exits_124(quiet: ServedTwin, client: JobsClient) -> None:
    quiet.twin.add_job("IMPORT", target_id="folder-2", run_seconds=3600)
    wait = Waiter(quiet, client)
    assert wait("folder-2", timeout=120) == EXIT_TIMEOUT
    assert "timeout:" in wait.err.getvalue() and "still IN_PROGRESS" in wait.err.getvalue()
    assert sum(wait.sleeps) <= 120 + 2.0


def test_a_job_that_never_appears_times_out(quiet: ServedTwin, client: JobsClient) -> None:
    wait = Waiter(quiet, client)
    assert wait("doc-nothing", job_type="EMBEDDING", timeout=30) == EXIT_TIMEOUT
    assert "no EMBEDDING job for target doc-nothing" in wait.err.getvalue()


def test_a_job_created_later_is_followed_and_other_types_are_ignored(
    quiet: ServedTwin, client: JobsClient
) -> None:
    twin = quiet.twin
    twin.add_job("EMBEDDING", target_id="doc-3", run_seconds=5)  # not the awaited type
    wait = Waiter(quiet, client)
    twin.before_request = lambda index: (
        twin.add_job("EXTRACTION", target_id="doc-3", queue_seconds=0, run_seconds=20) if index == 3 else None
    )
    assert wait("doc-3", job_type="EXTRACTION") == EXIT_DONE
    assert "EXTRACTION DONE" in wait.lines[-1]
    assert all("EMBEDDING" not in line for line in wait.lines)


def test_on_a_terminal_progress_is_a_bar(quiet: ServedTwin, client: JobsClient) -> None:
    quiet.twin.add_job("TRANSCRIPTION", target_id="audio-1", queue_seconds=2, run_seconds=60)
    wait = Waiter(quiet, client, terminal=True)
    assert wait("audio-1") == EXIT_DONE
    screen = wait.out.getvalue()
    assert "━" in screen  # rich's bar
    assert "TRANSCRIPTION DONE" in screen and "100%" in screen


def test_the_cli_maps_outcomes_to_exit_codes(twin: ServedTwin, monkeypatch: pytest.MonkeyPatch) -> None:
    # No sleeping here: jobs that already ended, and --timeout 0 for one that has not.
    monkeypatch.setenv("DEVANA_API_KEY", TWIN_KEY)
    monkeypatch.setenv("DEVANA_API_URL", twin.base_url)
    served = twin.twin
    served.add_job("EXTRACTION", target_id="doc-done", queue_seconds=0, run_seconds=5)
    served.add_job("EXTRACTION", target_id="doc-fail", queue_seconds=0, run_seconds=5, outcome="ERROR")
    served.add_job("EXTRACTION", target_id="doc-slow", queue_seconds=0, run_seconds=3600)
    twin.clock.advance(timedelta(seconds=10))
    runner = CliRunner()

    done = runner.invoke(app, ["wait", "--target", "doc-done", "--type", "EXTRACTION"])
    assert done.exit_code == 0, done.output
    assert "done: " in done.output and "EXTRACTION DONE 100%" in done.output

    failed = runner.invoke(app, ["wait", "--target", "doc-fail"])
    assert failed.exit_code == 1 and "failed:" in failed.output

    slow = runner.invoke(app, ["wait", "--target", "doc-slow", "--timeout", "0"])
    assert slow.exit_code == 124 and "timeout:" in slow.output

    monkeypatch.delenv("DEVANA_API_KEY")
    unconfigured = runner.invoke(app, ["wait", "--target", "doc-done"])
    assert unconfigured.exit_code == 2 and "DEVANA_API_KEY is not set" in unconfigured.output
