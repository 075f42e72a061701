"""Webhook events end to end over real HTTP: the receiver (in a subprocess or on uvicorn in a
thread), the twin as the sender, `run_sync` draining the spool into a real DuckDB file."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from jobs_pipeline.api.client import JobsClient
from jobs_pipeline.archive import open_for_analysis
from jobs_pipeline.sync import SyncConfig, run_sync
from jobs_pipeline.twin.webhooks import WebhookDeliveryConfig, WebhookSender
from jobs_pipeline.webhook.auth import Authenticator, sign
from jobs_pipeline.webhook.receiver import ReceiverSettings, build_app
from jobs_pipeline.webhook.server import serve_in_thread
from jobs_pipeline.webhook.spool import KIND_EVENT, read_spool, spool_depth, spool_dir_for
from jobs_pipeline_tests.conftest import TWIN_KEY, MakeTwin

PATH = "/webhook/job-status"
SECRET = "s3cret-for-tests"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def receiver_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    port = free_port()
    db = tmp_path / "archive.duckdb"
    env = {**os.environ, "HOOK_SECRET": SECRET}
    cmd = [
        sys.executable,
        "-m",
        "jobs_pipeline.cli.main",
        "webhook",
        "serve",
        "--db",
        str(db),
        "--port",
        str(port),
    ]
    process = subprocess.Popen([*cmd, "--secret-env", "HOOK_SECRET"], env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}{PATH}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the receiver did not start") from None
            time.sleep(0.05)
    try:
        yield process, url, db
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def signed(body: bytes) -> dict[str, str]:
    return {"content-type": "application/json", "x-webhook-signature": sign(SECRET, body)}


def test_kill_9_after_200_loses_nothing_and_refuses_bad_requests(
    receiver_process: tuple[subprocess.Popen[bytes], str, Path],
) -> None:
    process, url, db = receiver_process
    bodies = [
        orjson.dumps(
            {"jobId": f"job-{i}", "status": "PENDING", "type": "SYNC", "targetId": "f", "metadata": {}}
        )
        for i in range(200)
    ]
    with httpx.Client(timeout=10) as http:
        for body in bodies:
            assert http.post(url, content=body, headers=signed(body)).status_code == 200
        body = bodies[0]
        assert http.post(url, content=body, headers={"content-type": "application/json"}).status_code == 401
        wrong = {"content-type": "application/json", "x-webhook-signature": sign("other", body)}
        assert http.post(url, content=body, headers=wrong).status_code == 401
        huge = b'{"jobId": "' + b"x" * (10 * 1024 * 1024) + b'"}'
        assert http.post(url, content=huge, headers=signed(huge)).status_code == 413
        text = b"jobId=1"
        assert (
            http.post(url, content=text, headers={**signed(text), "content-type": "text/plain"}).status_code
            == 415
        )
        bad = b'{"status": "DONE"}'
        answer = http.post(url, content=bad, headers=signed(bad))
        assert answer.status_code == 400 and "jobId" in answer.json()["error"]
    process.send_signal(signal.SIGKILL)
    process.wait()
    drain = read_spool(spool_dir_for(db))
    try:
        events = [r for r in drain.records if r.kind == KIND_EVENT]
        assert sorted(r.body.encode() for r in events) == sorted(bodies)
        assert len(drain.records) == 201  # the malformed one is kept as a reject
        assert drain.idle_segments  # its receiver is gone: the segment can go once applied
    finally:
        drain.release()


class Harness:
    def __init__(
        self, make_twin: MakeTwin, tmp_path: Path, delivery: dict[str, Any], secret: str | None
    ) -> None:
        self.twin, self.base_url, self.clock = make_twin(jobs_per_day=3000, history_hours=2, seed=11)
        self.db = tmp_path / "archive.duckdb"
        self.client = JobsClient(self.base_url, TWIN_KEY, backoff_base=0.01, timeout=5.0, rate_limit=100_000)
        self.config = SyncConfig(base_url=self.base_url, api_key=TWIN_KEY, db_path=self.db, budget=500)
        self.delivery = delivery
        self.secret = secret
        self.start = self.clock.now()

    def run(self, steps: int, minutes: float) -> WebhookSender:
        auth = Authenticator(self.secret) if self.secret else None
        app = build_app(ReceiverSettings(spool_dir=spool_dir_for(self.db), auth=auth))
        with serve_in_thread(app) as url:
            sender = self.twin.deliver_webhooks(
                WebhookDeliveryConfig(url=url + PATH, seed=3, secret=self.secret, **self.delivery)
            )
            run_sync(self.config, source=self.client)
            for _ in range(steps):
                self.clock.advance(timedelta(minutes=minutes))
                self.twin.tick()
                assert sender.flush()
                run_sync(self.config, source=self.client)
            assert sender.flush()
            self.final = run_sync(self.config, source=self.client)
            sender.close()
        return sender

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with open_for_analysis(self.db) as conn:
            return conn.execute(sql).fetchall()

    def exact_changes(self) -> set[tuple[str, str, datetime]]:
        return {
            (job, status, at.astimezone(UTC))
            for job, status, at in self.query(
                "SELECT job_id, to_status, changed_at FROM job_status_changes WHERE changed_at IS NOT NULL"
            )
        }

    def true_transitions(self) -> list[tuple[str, str, datetime]]:
        """Transitions lived entirely while the twin was sending (jobs created after it started)."""
        out = []
        for job in self.twin.ground_truth():
            created = datetime.fromisoformat(job["createdAt"].replace("Z", "+00:00"))
            if created <= self.start:
                continue
            for step in job["history"]:
                out.append(
                    (job["id"], step["status"], datetime.fromisoformat(step["at"].replace("Z", "+00:00")))
                )
        return out


def test_lossless_delivery_dates_every_transition_exactly_killed_included(
    make_twin: MakeTwin, tmp_path: Path
) -> None:
    harness = Harness(make_twin, tmp_path, {"duplicate": 0.1, "reorder": 0.2}, secret=SECRET)
    sender = harness.run(steps=6, minutes=10)
    assert sender.stats.failed == 0 and sender.stats.rejected == 0 and sender.stats.duplicated > 0
    truth = harness.true_transitions()
    exact = harness.exact_changes()
    share = sum(1 for t in truth if t in exact) / len(truth)
    assert len(truth) > 300
    assert share >= 0.999, share
    kills = [t for t in truth if t[1] == "KILLED"]
    # Polling alone never dates a kill (the API hides KILLED jobs): the events do.
    assert kills and all(t in exact for t in kills)
    # Each distinct event recorded once; duplicates skipped; the spool is drained.
    (events,) = harness.query("SELECT count(*), count(DISTINCT event_key) FROM webhook_events")
    assert events[0] == events[1] == sender.stats.transitions
    assert spool_depth(spool_dir_for(harness.db))[0] == 0
    # The chain of changes stays a chain for every job.
    broken = harness.query(
        "SELECT count(*) FROM (SELECT job_id, from_status, lag(to_status) OVER (PARTITION BY job_id "
        "ORDER BY coalesce(changed_at, changed_before), step) AS prev FROM job_status_changes) "
        "WHERE prev IS NOT NULL AND prev IS DISTINCT FROM from_status"
    )
    assert broken == [(0,)]


def test_lossy_delivery_keeps_the_polled_archive_and_adds_every_delivered_event(
    make_twin: MakeTwin, tmp_path: Path
) -> None:
    harness = Harness(make_twin, tmp_path, {"loss": 0.05, "reorder": 0.1, "duplicate": 0.05}, secret=None)
    sender = harness.run(steps=4, minutes=10)
    assert sender.stats.lost > 0
    exact = harness.exact_changes()
    truth = {(job, status): at for job, status, at in harness.true_transitions()}
    delivered = [key for key in sender.stats.delivered_ids if key in truth]
    assert delivered and all((job, status, truth[(job, status)]) in exact for job, status in delivered)
    # Every job the polls saw is archived with its polled final state.
    visible = {j["id"]: j["status"] for j in harness.twin.visible_jobs()}
    archived = dict(harness.query("SELECT job_id, status FROM jobs"))
    assert all(archived.get(job) == status for job, status in visible.items())
    assert harness.final.webhook is None or harness.final.webhook.rejected == 0
