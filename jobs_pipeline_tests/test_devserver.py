"""`make dagster`'s supervisor: Ctrl-C / SIGTERM stop the whole process group, even a stubborn one.

Real processes and real signals; the supervised command is a small Python script instead of
`dagster dev` (same contract: a process tree that should stop on SIGINT).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

# A child that records its pid, optionally ignores SIGINT and SIGTERM (a slow shutdown), and sleeps.
CHILD = """
import os, signal, sys, time
open(sys.argv[1], "w").write(str(os.getpid()))
if sys.argv[2] == "stubborn":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
while True:
    time.sleep(0.1)
"""
SUPERVISOR = (
    "import sys; from jobs_pipeline.devserver import supervise; sys.exit(supervise(sys.argv[1:], 0.5))"
)


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # what a non-interactive shell does to `cmd &`


def _start(tmp_path: Path, mode: str) -> tuple[subprocess.Popen[bytes], int]:
    pid_file = tmp_path / "child.pid"
    supervisor = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR, sys.executable, "-c", CHILD, str(pid_file), mode],
        preexec_fn=_ignore_sigint,
    )
    for _ in range(600):  # the child is up once it wrote its pid (polling, no timing asserted)
        if pid_file.exists() and pid_file.read_text():
            return supervisor, int(pid_file.read_text())
        time.sleep(0.05)
    supervisor.kill()
    pytest.fail("the supervised child never started")


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie not reaped yet counts as gone: it runs nothing.
    status = Path(f"/proc/{pid}/stat")
    return status.exists() and status.read_text().split(") ")[1].startswith("Z")


@pytest.mark.parametrize(("signum", "mode"), [(signal.SIGINT, "polite"), (signal.SIGTERM, "polite")])
def test_a_signal_stops_the_child_even_when_started_with_sigint_ignored(
    tmp_path: Path, signum: int, mode: str
) -> None:
    supervisor, child = _start(tmp_path, mode)
    supervisor.send_signal(signum)
    assert supervisor.wait(timeout=60) == 128 + signum
    assert _gone(child)


def test_a_child_that_ignores_signals_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    supervisor, child = _start(tmp_path, "stubborn")
    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(timeout=60) == 128 + signal.SIGTERM
    assert _gone(child)


def test_dagster_command_is_the_environment_s_own_dagster() -> None:
    from jobs_pipeline.devserver import dagster_command

    command = dagster_command(["-w", "workspace.yaml"])
    assert command[1:] == ["dev", "-w", "workspace.yaml"]
    assert Path(command[0]).parent == Path(sys.executable).parent and Path(command[0]).exists()
