"""The Twin: simulation + API rules + faults + request log, behind one lock."""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from jobs_pipeline.twin.clock import Clock, RealClock
from jobs_pipeline.twin.config import TwinConfig
from jobs_pipeline.twin.faults import PAGE_FAULTS, FaultController, damage_page
from jobs_pipeline.twin.job import DONE, ERROR, KILLED
from jobs_pipeline.twin.query import QueryError, parse_jobs_query
from jobs_pipeline.twin.ratelimit import SlidingWindowLimiter
from jobs_pipeline.twin.requests_log import RequestLog, RequestRecord
from jobs_pipeline.twin.responses import (
    Response,
    error_response,
    page_response,
    proxy_502,
    retry_after,
)
from jobs_pipeline.twin.simulation import Simulation
from jobs_pipeline.twin.snapshot import Snapshot
from jobs_pipeline.twin.timefmt import http_date, iso_ms, seconds_to_ms, to_ms
from jobs_pipeline.twin.webhooks import WebhookDeliveryConfig, WebhookSender

API_PATH = "/v1/jobs"
CONTROL_PREFIX = "/_twin/"
_MIXED_FORMATS = ("seconds", "http-date", "none")


class Twin:
    """A deterministic simulator of the Devana Jobs API. See the package docstring."""

    def __init__(self, config: TwinConfig | None = None, clock: Clock | None = None) -> None:
        self.config = config or TwinConfig()
        self.clock: Clock = clock or RealClock()
        self.faults = FaultController(self.config.faults, self.config.seed)
        # Called with the request index before each API request is served (tests use it to
        # change the world mid-sync). Runs outside the twin's lock, on the server's thread.
        self.before_request: Callable[[int], None] | None = None
        self._lock = threading.RLock()
        self._limiter = SlidingWindowLimiter(self.config.rate_limit, self.config.rate_window_seconds)
        self._log = RequestLog()
        start_ms = to_ms(self.clock.now())
        self._sim = Simulation(self.config, start_ms)
        self._sim.advance_to(start_ms)
        self._snapshot: Snapshot | None = None

    # -- time ------------------------------------------------------------------------------------

    def _sync(self) -> int:
        """Bring the simulation to the clock's now (must hold the lock); returns now in ms."""
        now_ms = max(to_ms(self.clock.now()), self._sim.horizon_ms)
        self._sim.advance_to(now_ms)
        return now_ms

    def now(self) -> datetime:
        return self.clock.now()

    def tick(self) -> None:
        """Catch the simulation up with the clock (the server's ticker calls this)."""
        with self._lock:
            self._sync()

    @property
    def workers(self) -> int:
        return self._sim.workers

    def stats(self) -> dict[str, Any]:
        with self._lock:
            now_ms = self._sync()
            return {"now": iso_ms(now_ms), **self._sim.stats()}

    # -- the API view ----------------------------------------------------------------------------

    def _snapshot_at(self, now_ms: int) -> Snapshot:
        snapshot = self._snapshot
        if snapshot is None or snapshot.now_ms != now_ms or snapshot.version != self._sim.version:
            snapshot = Snapshot(self._sim.store, now_ms, self._sim.version, self.config.quirks.extra_fields)
            self._snapshot = snapshot
        return snapshot

    def visible_jobs(self, status: str | None = None, target_id: str | None = None) -> list[dict[str, Any]]:
        """Every job GET /v1/jobs could return right now (no pagination cap), newest first."""
        with self._lock:
            snapshot = self._snapshot_at(self._sync())
            return [_own_copy(snapshot.render(job)) for job in snapshot.all(status, target_id)]

    # -- ground truth ----------------------------------------------------------------------------

    def ground_truth(self) -> list[dict[str, Any]]:
        """One record per job created up to now, KILLED included, oldest first."""
        with self._lock:
            self._sync()
            return [job.truth() for job in self._sim.store.truth]  # kept in (createdAt, id) order

    def status_at(self, job_id: str, instant: datetime) -> str | None:
        """The job's status at `instant` (None if not created yet); instants up to now only."""
        at_ms = to_ms(instant)
        with self._lock:
            now_ms = self._sync()
            if at_ms > now_ms:
                raise ValueError(f"{instant} is after the twin clock ({iso_ms(now_ms)})")
            job = self._sim.store.truth_by_id.get(job_id)
            if job is None:
                raise KeyError(job_id)
            return job.status_at(at_ms)

    # -- scripted scenarios ----------------------------------------------------------------------

    def add_job(
        self,
        job_type: str = "EXTRACTION",
        target_id: str | None = None,
        created_at: datetime | None = None,
        queue_seconds: float = 0,
        run_seconds: float = 30,
        outcome: str = DONE,
        kill_after_seconds: float | None = None,
        metadata: dict[str, Any] | None = None,
        *,
        user_id: str | None = None,
        error: str | None = None,
        progress: bool = True,
    ) -> str:
        """Add a job with a dictated timeline (bypasses the worker pool); returns its id.

        It waits `queue_seconds` PENDING, runs `run_seconds`, then ends `outcome` (DONE, ERROR,
        or KILLED at the end of its run); `kill_after_seconds` (from createdAt) kills it earlier,
        while pending or running. `metadata=None` draws typical metadata for the type.
        """
        if outcome not in (DONE, ERROR, KILLED):
            raise ValueError("outcome must be DONE, ERROR or KILLED")
        if (
            queue_seconds < 0
            or run_seconds < 0
            or (kill_after_seconds is not None and kill_after_seconds < 0)
        ):
            raise ValueError("durations must be >= 0")
        with self._lock:
            now_ms = self._sync()
            job = self._sim.workload.scripted_job(
                job_type=job_type,
                target_id=target_id,
                user_id=user_id,
                created_ms=to_ms(created_at) if created_at is not None else now_ms,
                queue_ms=seconds_to_ms(queue_seconds),
                run_ms=seconds_to_ms(run_seconds),
                outcome=outcome,
                kill_after_ms=seconds_to_ms(kill_after_seconds) if kill_after_seconds is not None else None,
                metadata=metadata,
                error=error,
                progress=progress,
            )
            self._sim.add_scripted(job)
            return job.id

    def kill(self, job_id: str) -> bool:
        """Kill a job now. False if it had already ended (DONE, ERROR or KILLED)."""
        with self._lock:
            self._sync()
            job = self._sim.store.truth_by_id.get(job_id)
            if job is None:
                raise KeyError(f"no job {job_id!r} has been created yet")
            return self._sim.kill(job)

    # -- requests --------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        return self._log.records()

    def handle(self, method: str, target: str, headers: Mapping[str, str]) -> Response:
        """Serve one HTTP request (method, request-target, headers) of the API."""
        split = urlsplit(target)
        params = parse_qs(split.query, keep_blank_values=True)
        query = {name: ",".join(values) for name, values in params.items()}
        index = self._log.reserve()
        hook = self.before_request
        hook_error: str | None = None
        if hook is not None:
            try:
                hook(index)
            except Exception:
                hook_error = traceback.format_exc(limit=3)
        key_ok = False
        fault: str | None = None
        with self._lock:
            now_ms = self._sync()
            if hook_error is not None:
                response = error_response(500, f"before_request hook failed: {hook_error}")
            elif split.path != API_PATH:
                response = error_response(404, f"Cannot {method} {split.path}")
            elif method != "GET":
                response = error_response(405, f"Method {method} not allowed", [("Allow", "GET")])
            else:
                key_ok = self._key_ok(headers)
                response, fault = self._serve_jobs(index, now_ms, headers, params, key_ok)
            if self.config.quirks.date_header:
                response.headers.append(("Date", http_date(now_ms)))
            self._log.fill(
                RequestRecord(
                    method=method,
                    path=split.path,
                    query=query,
                    status_code=None if response.delivery == "reset" else response.status,
                    key_ok=key_ok,
                    index=index,
                    fault=fault,
                    at=iso_ms(now_ms),
                )
            )
        return response

    def _key_ok(self, headers: Mapping[str, str]) -> bool:
        scheme, _, key = (_header(headers, "Authorization") or "").strip().partition(" ")
        return scheme.lower() == "bearer" and key.strip() in self.config.api_keys

    def _serve_jobs(
        self,
        index: int,
        now_ms: int,
        headers: Mapping[str, str],
        params: dict[str, list[str]],
        key_ok: bool,
    ) -> tuple[Response, str | None]:
        if not key_ok:
            missing = not (_header(headers, "Authorization") or "").strip()
            return error_response(401, "Missing API key" if missing else "Invalid API key"), None
        key = (_header(headers, "Authorization") or "").strip().partition(" ")[2].strip()
        wait = self._limiter.acquire(key)
        if wait is not None:
            seconds = SlidingWindowLimiter.retry_after_seconds(wait)
            return error_response(429, "Too many requests", self._retry_after(index, seconds, now_ms)), None
        fault = self.faults.draw(index)
        if fault in ("500", "503", "429", "502"):
            return self._status_fault(fault, index, now_ms), fault
        try:
            query = parse_jobs_query(params, self.config.quirks.clamp_over_limit)
        except QueryError as exc:
            return error_response(400, str(exc)), fault
        snapshot = self._snapshot_at(now_ms)
        selected = snapshot.page(query.status, query.target_id, query.offset, query.limit)
        rows: list[Any] = [snapshot.render(job) for job in selected]
        if fault in PAGE_FAULTS:
            rows = damage_page(fault, rows, self.faults.rng(index), self.faults.config)
        response = page_response(rows)
        if fault == "invalid_json":
            # A body cut mid-document but with a consistent Content-Length: only the parser notices.
            response.body = response.body[: max(1, len(response.body) // 2)]
        elif fault in ("timeout", "reset", "truncated"):
            response.delivery = fault
            response.stall_seconds = self.faults.config.timeout_seconds if fault == "timeout" else 0.0
        return response, fault

    def _status_fault(self, fault: str, index: int, now_ms: int) -> Response:
        seconds = self.faults.config.retry_after_seconds
        if fault == "429":
            return error_response(429, "Too many requests", self._retry_after(index, seconds, now_ms))
        if fault == "503":
            return error_response(503, "Service temporarily unavailable", [("Retry-After", str(seconds))])
        if fault == "502":
            return proxy_502()
        return error_response(500, "Internal server error")

    def _retry_after(self, index: int, seconds: int, now_ms: int) -> list[tuple[str, str]]:
        fmt = self.config.retry_after_format
        if fmt == "mixed":
            fmt = _MIXED_FORMATS[index % len(_MIXED_FORMATS)]
        return retry_after(fmt, seconds, now_ms)

    # -- webhooks --------------------------------------------------------------------------------

    def deliver_webhooks(self, config: WebhookDeliveryConfig) -> WebhookSender:
        """POST every transition lived from now on to `config.url` (see webhooks.py)."""
        sender = WebhookSender(config)
        with self._lock:
            self._sim.on_transition = sender.transition
        return sender

    # -- serving ---------------------------------------------------------------------------------

    @contextmanager
    def serve(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
        """Serve the API over HTTP while the block runs; yields the base URL."""
        from jobs_pipeline.twin.server import TwinServer

        server = TwinServer(self, host, port)
        server.start()
        try:
            yield server.base_url
        finally:
            server.stop()


def _own_copy(row: dict[str, Any]) -> dict[str, Any]:
    """A copy the caller may change: rendered rows are shared (one level deep: metadata)."""
    copied = dict(row)
    if isinstance(copied.get("metadata"), dict):
        copied["metadata"] = dict(copied["metadata"])
    return copied


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        for key, candidate in headers.items():
            if key.lower() == lowered:
                return candidate
    return value
