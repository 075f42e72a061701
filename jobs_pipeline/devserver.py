"""`make dagster`: `dagster dev` that stops promptly and completely on Ctrl-C or SIGTERM.

Run as `python -m jobs_pipeline.devserver [dagster dev arguments]` (the Makefile does). It does not
import dagster: it runs `dagster dev` next to this interpreter as a child in its own process group,
and on SIGINT or SIGTERM
1. sends SIGINT to that group (dagster's own graceful path: webserver, daemon and code server);
2. after JOBS_PIPELINE_DAGSTER_GRACE_S seconds (default 10) sends SIGKILL to the group.
Why: `dagster dev` takes ~15-20 s to wind down on its own, and when started in the background by a
non-interactive shell it inherits SIGINT as *ignored*; the child here always gets default handlers.
Exit status: dagster's own, or 128 + the signal received.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

GRACE_ENV = "JOBS_PIPELINE_DAGSTER_GRACE_S"
DEFAULT_GRACE_S = 10.0


def dagster_command(args: Sequence[str]) -> list[str]:
    """`dagster dev` of the interpreter's environment (no PATH lookup, no `uv run` layer)."""
    return [str(Path(sys.executable).with_name("dagster")), "dev", *args]


def _default_signals() -> None:
    # Runs in the child before exec: undo an inherited "ignore SIGINT" (background jobs).
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def supervise(command: Sequence[str], grace_s: float) -> int:
    """Run `command` in its own process group until it exits or a signal asks us to stop it."""
    child = subprocess.Popen(list(command), start_new_session=True, preexec_fn=_default_signals)
    received: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if not received:
            received.append(signum)
            _signal_group(child.pid, signal.SIGINT)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    while child.poll() is None and not received:
        time.sleep(0.2)
    if received:
        deadline = time.monotonic() + grace_s
        while child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        # Whatever is left of the group (a code server that outlived its parent included) goes now.
        _signal_group(child.pid, signal.SIGKILL)
        child.wait()
        return 128 + received[0]
    _signal_group(child.pid, signal.SIGKILL)  # dagster exited: leave no orphan behind
    return child.returncode


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the whole group is gone already
        os.killpg(pgid, signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    grace_s = float(os.environ.get(GRACE_ENV) or DEFAULT_GRACE_S)
    return supervise(dagster_command(args), grace_s)


if __name__ == "__main__":
    sys.exit(main())
