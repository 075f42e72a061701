"""Shared fixtures: an API twin served over HTTP on a stepped clock.

    def test_x(twin):                      # TwinConfig defaults, 2,000 jobs/day, seed 7
        api, base_url, clock = twin

    @pytest.mark.parametrize("twin", [{"jobs_per_day": 0}], indirect=True)
    def test_y(twin): ...                  # any TwinConfig field (an int means jobs_per_day)

    def test_z(make_twin):                 # several twins, or a custom clock / start
        api, base_url, clock = make_twin(jobs_per_day=6000, rate_limit=None)

`http` is one plain httpx.Client for the session (building a client costs ~20-100 ms).

Hypothesis: with the environment variable CI set (to anything non-empty) the "ci" profile runs
derandomized (the same examples every run, no example database), so CI fails only on a real
regression, never on a fresh random draw; locally the "dev" profile keeps exploring at random.
Failures found locally go into @example(...) on the test. HYPOTHESIS_PROFILE=<name> overrides.

Defaults are the faithful API: 100 requests per real minute per key ("test-key").
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any, NamedTuple

import httpx
import pytest
from hypothesis import settings

from jobs_pipeline.twin import SteppedClock, Twin, TwinConfig

settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("dev", print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))

# Clients share one rate budget per key across processes through files (api/shared_budget.py):
# keep the test run's out of the user's cache dir, in one dir for the whole run (xdist workers too).
os.environ.setdefault("JOBS_PIPELINE_RATE_STATE_DIR", tempfile.mkdtemp(prefix="jobs-pipeline-rate-"))

TWIN_START = datetime(2026, 11, 1, 12, tzinfo=UTC)
TWIN_KEY = "test-key"


class ServedTwin(NamedTuple):
    twin: Twin
    base_url: str
    clock: SteppedClock


MakeTwin = Callable[..., ServedTwin]


@pytest.fixture
def make_twin() -> Iterator[MakeTwin]:
    with ExitStack() as stack:

        def factory(*, start: datetime = TWIN_START, **config: Any) -> ServedTwin:
            config.setdefault("jobs_per_day", 2000)
            config.setdefault("seed", 7)
            config.setdefault("api_keys", (TWIN_KEY,))
            clock = SteppedClock(start=start)
            twin = Twin(TwinConfig(**config), clock=clock)
            return ServedTwin(twin, stack.enter_context(twin.serve()), clock)

        yield factory


@pytest.fixture
def twin(request: pytest.FixtureRequest, make_twin: MakeTwin) -> ServedTwin:
    param = getattr(request, "param", {})
    config = {"jobs_per_day": param} if isinstance(param, int | float) else dict(param)
    return make_twin(**config)


@pytest.fixture(scope="session")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(transport=httpx.HTTPTransport(verify=False), timeout=10) as client:
        yield client
