"""One rate budget per API key across processes (api/shared_budget.py).

Unit tests on a fake clock (two budget objects on one file stand for two processes), then real
processes against the twin's strict limiter in real time.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx

from jobs_pipeline.api.client import JobsClient
from jobs_pipeline.api.shared_budget import SharedRateBudget, budget_name, key_rate_limiter
from jobs_pipeline_tests.conftest import TWIN_KEY, MakeTwin

KEY = "sk-secret-key-123"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def budgets(tmp_path: Path, clock: FakeClock, *limits: int, window: float = 10.0) -> list[SharedRateBudget]:
    path = tmp_path / f"{budget_name('http://api.test', KEY)}.json"
    return [SharedRateBudget(path, limit, window, clock=clock, sleep=clock.sleep) for limit in limits]


def test_two_processes_together_never_exceed_the_limit(tmp_path: Path) -> None:
    clock = FakeClock()
    first, second = budgets(tmp_path, clock, 4, 4)
    grants = [(first if i % 2 else second).acquire().at for i in range(20)]
    assert grants == sorted(grants)
    for earlier, later in zip(grants, grants[4:], strict=False):
        assert later - earlier >= 10.0 - 1e-3  # any 4 consecutive grants span a whole window
    assert first.in_window() == second.in_window() <= 4


def test_a_lower_share_counts_everyone_elses_requests(tmp_path: Path) -> None:
    clock = FakeClock()
    full, shared_with_others = budgets(tmp_path, clock, 10, 3)
    for _ in range(3):
        full.acquire()
    grant = shared_with_others.acquire()  # three in the window already: wait for one to leave
    assert grant.waited >= 10.0 - 1e-3
    for _ in range(6):
        assert full.acquire().waited == 0.0  # the full share still has room beside it


def test_a_pause_in_one_process_holds_every_other(tmp_path: Path) -> None:
    clock = FakeClock()
    first, second = budgets(tmp_path, clock, 100, 100)
    first.pause(7.0)
    assert second.acquire().waited >= 7.0
    assert first.acquire().waited == 0.0  # the pause is over for everyone


def test_the_state_file_names_and_holds_no_key_and_survives_corruption(tmp_path: Path) -> None:
    clock = FakeClock()
    (budget,) = budgets(tmp_path, clock, 2)
    budget.acquire()
    budget.pause(1.0)
    for file in tmp_path.iterdir():
        assert KEY not in file.name
        assert KEY not in file.read_text(errors="replace")
    budget.path.write_text("{not json")
    assert budget.in_window() == 0  # unreadable state is an empty window, never an error
    assert budget_name("http://api.test", KEY) != budget_name("http://other.test", KEY)


def test_sharing_off_falls_back_to_the_process_limiter(tmp_path: Path) -> None:
    assert isinstance(key_rate_limiter("http://api.test", KEY, 5, 1.0, tmp_path), SharedRateBudget)
    assert not isinstance(key_rate_limiter("http://api.test", KEY, 5, 1.0, None), SharedRateBudget)


# --- real processes, real time, the twin's strict limiter ------------------------------------

WORKER = textwrap.dedent(
    """
    import json, sys
    from jobs_pipeline.api.client import JobsClient
    base_url, key, limit, window, requests, state_dir = sys.argv[1:7]
    client = JobsClient(base_url, key, rate_limit=int(limit), rate_window_seconds=float(window),
                        max_attempts=1, rate_state_dir=__import__("pathlib").Path(state_dir))
    sent = 0
    for _ in range(int(requests)):
        client.list_jobs(limit=1)
        sent += 1
    print(json.dumps({"sent": sent, "429": client.responses_429,
                      "waited": client.rate_limit_wait_seconds, "done_at": __import__("time").time()}))
    """
)


def run_workers(args: list[list[str]]) -> list[dict[str, float]]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, *a], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for a in args
    ]
    out = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr  # max_attempts=1: a single 429 fails the worker
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def test_two_processes_sharing_a_key_get_no_429_from_the_strict_limiter(
    make_twin: MakeTwin, tmp_path: Path
) -> None:
    # The server allows 10 per second per key; each process alone would send 20 at once. The
    # client's limit is 9: one slot of slack for the gap between a grant and the server's count
    # (a request granted first may arrive second).
    served = make_twin(jobs_per_day=200, rate_limit=10, rate_window_seconds=1.0)
    args = [served.base_url, TWIN_KEY, "9", "1.0", "20", str(tmp_path)]
    results = run_workers([args, args])
    assert [r["sent"] for r in results] == [20, 20]
    assert [r["429"] for r in results] == [0, 0]


def test_a_retry_after_in_one_process_pauses_the_other(make_twin: MakeTwin, tmp_path: Path) -> None:
    served = make_twin(jobs_per_day=200, rate_limit=None)
    answers = iter([httpx.Response(429, headers={"Retry-After": "6"}, json={"error": "Too many requests"})])

    def first_is_429(request: httpx.Request) -> httpx.Response:
        return next(answers, httpx.Response(200, json={"data": [], "total": 0}))

    # This process is told to wait 6 s (it gives up at once: max_attempts=1)...
    limited = JobsClient(
        served.base_url,
        TWIN_KEY,
        max_attempts=1,
        transport=httpx.MockTransport(first_is_429),
        rate_state_dir=tmp_path,
    )
    told_at = time.time()
    try:
        limited.list_jobs()
    except Exception:
        pass
    finally:
        limited.close()
    assert limited.responses_429 == 1
    # ...and another process using the same key waits out the same pause before its request.
    (result,) = run_workers([[served.base_url, TWIN_KEY, "100", "60", "1", str(tmp_path)]])
    assert result["sent"] == 1 and result["429"] == 0
    # A lower bound only (the worker may start late on a loaded machine, never early).
    assert result["done_at"] >= told_at + 6.0 - 0.05
