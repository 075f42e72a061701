"""`jobs-pipeline watch`: the dashboard against the twin over HTTP on a stepped clock."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console
from typer.testing import CliRunner

from jobs_pipeline.api.client import JobsClient
from jobs_pipeline.api.models import Job
from jobs_pipeline.cli.main import app
from jobs_pipeline.watch.board import OUT_OF_VIEW
from jobs_pipeline.watch.dashboard import REQUESTS_PER_REFRESH, Dashboard, run_live
from jobs_pipeline.watch.eta import estimate, load_history_curves
from jobs_pipeline_tests.conftest import TWIN_KEY, MakeTwin, ServedTwin
from jobs_pipeline_tests.test_report_html import shared_demo_archive


@pytest.fixture
def quiet(make_twin: MakeTwin) -> ServedTwin:
    """A twin with scripted jobs only, no rate limit."""
    return make_twin(jobs_per_day=0, rate_limit=None)


@pytest.fixture
def client(quiet: ServedTwin) -> Iterator[JobsClient]:
    with JobsClient(
        quiet.base_url, TWIN_KEY, rate_limit=100_000, max_attempts=2, backoff_base=0.01, backoff_max=0.02
    ) as jobs_client:
        yield jobs_client


def frame_text(dashboard: Dashboard) -> str:
    console = Console(record=True, width=200, file=io.StringIO(), color_system=None)
    console.print(dashboard.frame())
    return console.export_text()


def changes(transitions: list) -> list[tuple[str, str | None, str]]:
    return [(t.job_id, t.from_status, t.to_status) for t in transitions]


def test_transitions_appear_as_they_happen_with_two_requests_per_refresh(
    quiet: ServedTwin, client: JobsClient
) -> None:
    twin, _, clock = quiet
    first = twin.add_job("EXTRACTION", target_id="doc-1", queue_seconds=10, run_seconds=60)
    dashboard = Dashboard(client, quiet.base_url, limit=50, interval=5)

    assert dashboard.refresh() == []  # first sight is not a transition
    assert dashboard.board.statistics is not None and dashboard.board.statistics.pending == 1

    clock.advance(timedelta(seconds=15))
    assert changes(dashboard.refresh()) == [(first, "PENDING", "IN_PROGRESS")]
    assert [job.id for job in dashboard.board.running] == [first]

    second = twin.add_job("GENERATION", target_id="doc-2", queue_seconds=0, run_seconds=20)
    clock.advance(timedelta(seconds=5))
    assert changes(dashboard.refresh()) == [(second, None, "IN_PROGRESS")]

    clock.advance(timedelta(seconds=60))
    assert sorted(changes(dashboard.refresh())) == sorted(
        [(first, "IN_PROGRESS", "DONE"), (second, "IN_PROGRESS", "DONE")]
    )
    assert dashboard.board.running == []

    queries = [record.query for record in twin.requests]
    assert len(queries) == 4 * REQUESTS_PER_REFRESH
    assert [(q.get("type"), q["limit"]) for q in queries[:2]] == [(None, "50"), ("IN_PROGRESS", "100")]
    assert all(record.method == "GET" and record.path == "/v1/jobs" for record in twin.requests)


def test_the_frame_shows_counts_progress_eta_and_transitions(quiet: ServedTwin, client: JobsClient) -> None:
    twin, _, clock = quiet
    # The twin leaves `progress` out of some jobs (as the API does): three jobs, at least one reports it.
    for index in range(3):
        twin.add_job("EMBEDDING", target_id=f"doc-{index}", queue_seconds=5, run_seconds=100)
    dashboard = Dashboard(client, quiet.base_url, limit=10, interval=5)
    dashboard.refresh()
    clock.advance(timedelta(seconds=55))  # 50 s into 100 s runs
    dashboard.refresh()
    reporting = [job for job in dashboard.board.running if job.progress]
    assert len(dashboard.board.running) == 3 and reporting
    running = reporting[0]
    assert running.progress is not None and 0 < running.progress < 100

    text = frame_text(dashboard)
    assert "Newest 10 jobs by status" in text
    assert running.id in text and "EMBEDDING" in text and running.target_id in text  # type: ignore[operator]
    assert f"{running.progress:>3d}%" in text
    assert text.count("PENDING -> IN_PROGRESS") == 3
    assert "2 requests each (~24/min)" in text
    # Without an archive the ETA is the progress estimate: elapsed * (100 - p) / p.
    elapsed = (dashboard.board.observed_at - running.started_at).total_seconds()  # type: ignore[operator]
    expected = round(elapsed * (100 - running.progress) / running.progress)
    assert f"{expected}s (progress)" in text or f"{expected // 60}m{expected % 60:02d}s (progress)" in text


def test_a_running_job_that_ends_outside_the_newest_jobs_is_reported_as_ended(
    quiet: ServedTwin, client: JobsClient
) -> None:
    twin, _, clock = quiet
    old = twin.add_job("SYNC", target_id="folder-1", queue_seconds=0, run_seconds=120)
    clock.advance(timedelta(seconds=30))
    twin.add_job("GENERATION", target_id="doc-4", queue_seconds=600, run_seconds=5)  # newest, stays PENDING
    dashboard = Dashboard(client, quiet.base_url, limit=1, interval=5)
    dashboard.refresh()
    assert [job.id for job in dashboard.board.running] == [old]
    clock.advance(timedelta(seconds=120))
    assert changes(dashboard.refresh()) == [(old, "IN_PROGRESS", OUT_OF_VIEW)]


def test_live_mode_keeps_going_through_an_api_failure(quiet: ServedTwin, client: JobsClient) -> None:
    twin, _, clock = quiet
    twin.add_job("EXTRACTION", target_id="doc-5", queue_seconds=0, run_seconds=300)
    dashboard = Dashboard(client, quiet.base_url, limit=50, interval=5)
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.advance(timedelta(seconds=seconds))
        if len(sleeps) == 1:
            twin.faults.fail_next(2, "500")  # both attempts of the next refresh fail

    out = io.StringIO()
    run_live(dashboard, Console(file=out, width=160, force_terminal=True), sleep=sleep, max_refreshes=3)
    assert sleeps == [5, 5]
    assert dashboard.board.refreshes == 2 and dashboard.last_error is None  # the third refresh recovered
    assert "last refresh failed: the API failed (500)" in out.getvalue()


def test_watch_once_against_the_twin(twin: ServedTwin, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVANA_API_KEY", TWIN_KEY)
    monkeypatch.setenv("DEVANA_API_URL", twin.base_url)
    monkeypatch.delenv("JOBS_PIPELINE_DB", raising=False)
    result = CliRunner().invoke(app, ["watch", "--once", "--limit", "20"])
    assert result.exit_code == 0, result.output
    assert "Newest 20 jobs by status" in result.output
    assert "Running jobs" in result.output
    assert len(twin.twin.requests) == REQUESTS_PER_REFRESH


def test_watch_needs_the_key_and_a_sane_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEVANA_API_KEY", raising=False)
    result = CliRunner().invoke(app, ["watch", "--once"])
    assert result.exit_code == 2
    assert "DEVANA_API_KEY is not set" in result.output
    too_fast = CliRunner().invoke(app, ["watch", "--interval", "0.5"])
    assert too_fast.exit_code == 2


def test_eta_uses_the_archive_history_when_given_one(
    tmp_path_factory: pytest.TempPathFactory, twin: ServedTwin, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = shared_demo_archive(tmp_path_factory)
    curves = load_history_curves(db, "default")
    assert curves is not None and set(curves["job_type"].unique()) >= {"EXTRACTION", "GENERATION"}

    started = datetime(2026, 11, 1, 12, tzinfo=UTC)
    silent = Job(
        "j1", None, None, "EXTRACTION", "IN_PROGRESS", started, started, progress=None, started_at=started
    )
    halfway = Job(
        "j2", None, None, "EXTRACTION", "IN_PROGRESS", started, started, progress=60, started_at=started
    )
    estimates = estimate([silent, halfway], started + timedelta(seconds=30), curves)
    # No progress: the type's median remaining life from the Kaplan-Meier curve alone.
    assert estimates["j1"].source == "history" and estimates["j1"].remaining_s is not None
    assert estimates["j1"].remaining_s > 0
    # 60 % is past full trust (50 %): progress alone, 30 s * 40 / 60.
    assert estimates["j2"].source == "progress" and estimates["j2"].remaining_s == pytest.approx(20.0)

    monkeypatch.setenv("DEVANA_API_KEY", TWIN_KEY)
    monkeypatch.setenv("DEVANA_API_URL", twin.base_url)
    result = CliRunner().invoke(app, ["watch", "--once", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "ETA from progress and 7-day history" in result.output
