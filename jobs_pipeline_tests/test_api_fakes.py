"""Shared fakes for the api tests (no tests here): job records, a fake clock, a MockTransport client."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import httpx

from jobs_pipeline.api.client import JobsClient
from jobs_pipeline.api.limiter import SlidingWindowLimiter

KEY = "sk-live-7f3a9c1e-SECRET-d00d"
BASE = "https://api.example.test"

Handler = Callable[[httpx.Request], httpx.Response]


def job_record(job_id: str = "cm4job1", **overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": job_id,
        "userId": "cm4user1",
        "targetId": "cm4doc1",
        "type": "EXTRACTION",
        "status": "IN_PROGRESS",
        "progress": 65,
        "metadata": {"fileName": "rapport.pdf", "pageCount": 45},
        "startedAt": "2024-10-28T10:30:00.000Z",
        "createdAt": "2024-10-28T10:29:00.000Z",
        "updatedAt": "2024-10-28T10:35:00.123Z",
    }
    record.update(overrides)
    return record


def ok(records: list[Any], *, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(200, json={"success": True, "data": records}, headers=headers)


def error_body(status: int, message: str, *, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json={"success": False, "error": message}, headers=headers)


def raw_body(status: int, content: bytes) -> httpx.Response:
    return httpx.Response(status, content=content, headers={"content-type": "application/json"})


class FakeClock:
    """Monotonic seconds that only move when something sleeps on them; records every sleep."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0, f"negative sleep {seconds}"
        self.sleeps.append(seconds)
        self.now += seconds


class Recorder:
    """A MockTransport handler that answers from a script and records each request."""

    def __init__(self, *responses: httpx.Response | Exception | Handler) -> None:
        self.script = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, Exception):
            raise step
        if isinstance(step, httpx.Response):
            return step
        return step(request)

    def queries(self) -> list[dict[str, str]]:
        return [dict(request.url.params) for request in self.requests]


def make_client(
    handler: Callable[[httpx.Request], httpx.Response],
    *,
    clock: FakeClock | None = None,
    limit: int = 10_000,
    window: float = 60.0,
    seed: int = 7,
    **kwargs: Any,
) -> tuple[JobsClient, FakeClock]:
    """A client on MockTransport whose sleeps and limiter run on one fake clock (no real waiting)."""
    clock = clock or FakeClock()
    limiter = SlidingWindowLimiter(limit, window, clock=clock, sleep=clock.sleep)
    client = JobsClient(
        BASE,
        KEY,
        transport=httpx.MockTransport(handler),
        sleep=clock.sleep,
        limiter=limiter,
        rng=random.Random(seed),
        **kwargs,
    )
    return client, clock


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()
