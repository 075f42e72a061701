"""`jobs-pipeline twin serve`, run as a real process and driven over HTTP."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import httpx
from typer.testing import CliRunner

from jobs_pipeline.cli.main import app

OPTIONS = (
    "--port",
    "--jobs-per-day",
    "--speed",
    "--seed",
    "--api-key",
    "--history-hours",
    "--fault-rate",
    "--stepped",
    "--rate-limit",
    "--clamp-over-limit",
    "--extra-fields",
)


def test_help_documents_every_option() -> None:
    result = CliRunner().invoke(app, ["twin", "serve", "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0
    for option in OPTIONS:
        assert option in result.output


def test_serve_prints_the_url_serves_and_stops_on_ctrl_c(http: httpx.Client) -> None:
    command = [
        sys.executable,
        "-m",
        "jobs_pipeline.cli.main",
        "twin",
        "serve",
        "--port",
        "0",
        "--jobs-per-day",
        "800",
        "--history-hours",
        "3",
        "--start",
        "2026-11-01T12:00:00Z",
        "--stepped",
        "--api-key",
        "k1",
        "--api-key",
        "k2",
        "--extra-fields",
        "--rate-limit",
        "5",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base_url), base_url
        response = http.get(base_url + "/v1/jobs", headers={"Authorization": "Bearer k2"})
        assert response.status_code == 200
        assert response.headers["date"] == "Sun, 01 Nov 2026 12:00:00 GMT"
        assert {"priority", "queue"} <= set(response.json()["data"][0])
        assert http.post(base_url + "/_twin/advance", params={"seconds": 60}).status_code == 200
        statuses = [
            http.get(base_url + "/v1/jobs", headers={"Authorization": "Bearer k1"}).status_code
            for _ in range(6)
        ]
        assert statuses == [200] * 5 + [429]
        assert http.get(base_url + "/_twin/truth").json()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0  # generous: a loaded CI machine is slow to wind down
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
