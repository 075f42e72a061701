"""The Devana Jobs API twin: a faithful, deterministic simulator of `GET /v1/jobs`.

It serves real HTTP on 127.0.0.1 and imports nothing else from jobs_pipeline. The demo, the
tests and the capture benchmark use it; the benchmark scores the archiver against its ground
truth.

    clock = SteppedClock(start=datetime(2026, 11, 1, 12, tzinfo=UTC))
    twin = Twin(TwinConfig(jobs_per_day=6000, seed=7), clock=clock)
    with twin.serve() as base_url:             # "http://127.0.0.1:<free port>"
        clock.advance(timedelta(minutes=10))
        truth = twin.ground_truth()

The API (the contract in /work/shared/API-NOTES.md)
    `GET /v1/jobs` with `Authorization: Bearer <key>` (else 401). Envelope
    `{"success": true, "data": [...]}` / `{"success": false, "error": "..."}`; other paths 404,
    other methods 405. `type` filters by STATUS (PENDING, IN_PROGRESS, DONE, ERROR; anything
    else 400), `targetId` by target, `limit` 1..100 (default 25), `offset` 0..1000 (over: 400,
    or clamped with `Quirks(clamp_over_limit=True)`). Newest createdAt first, ties by id
    descending. Only jobs with `now - 24 h < createdAt <= now` (twin clock) are visible;
    KILLED jobs never are. `Date` is the twin clock. Rate limit: `rate_limit` requests per key
    per sliding `rate_window_seconds` of real time, then 429 + Retry-After.

The workload
    Daily-cycle Poisson arrivals (peak mid-afternoon UTC), six job types with the doc's typical
    durations (log-uniform, 1 % slow tail at 2-10x the max), per-type failure rates, a FIFO
    worker pool sized for ~60 % utilisation (queues are real, bursts build a PENDING backlog),
    ~1 % KILLED (some pending, some running), progress steps that bump updatedAt (~10 % of jobs
    have no progress), EXTRACTION -> EMBEDDING follow-ups on the same document, SYNC/IMPORT on a
    small pool of folders. The twin has already run `history_hours` when its clock starts.

Scripting: `twin.add_job(...)` adds a job with a dictated timeline (it bypasses the worker
pool and never perturbs the simulated background), `twin.kill(job_id)` kills one now,
`twin.before_request = hook` runs `hook(request_index)` before each API request is served,
`twin.requests` lists every API request (RequestRecord: method, path, query, status_code,
key_ok, index, fault, at). `twin.visible_jobs(status, target_id)` is everything the API could
return right now, uncapped.

Faults (FaultConfig / `twin.faults`): see faults.py for the kinds. They act after auth and the
real rate limit, are a pure function of (seed, request index), and never change the truth.

Control endpoints for a twin in another process (no auth, not logged): GET /_twin/truth,
GET /_twin/requests, GET /_twin/status, POST /_twin/advance?seconds=N (stepped clock),
POST /_twin/faults?kind=K&n=N.

Memory: a job leaves the API view (its rendered rows, metadata and progress are dropped) once
older than 24 h, and the live store once older than `forget_after` (48 h). Ground truth keeps
every job, compacted to ~200 bytes, unless `truth_retention` is set: then records older than
that are dropped too (`twin serve` keeps 168 h). At 40,000 jobs/day with 72 h of truth the
process stays around 130 MB, and a simulated day costs ~2-3 s of CPU.

Ground truth: `twin.ground_truth()` (also `GET /_twin/truth`) is a list, oldest first, of
    {"id": str, "userId": str, "targetId": str, "type": str,
     "createdAt": "2026-11-01T11:59:58.123Z",
     "startedAt": str | None,        # when a worker picked it up
     "completedAt": str | None,      # when it ended DONE or ERROR (None for KILLED)
     "finalStatus": "PENDING" | "IN_PROGRESS" | "DONE" | "ERROR" | "KILLED",  # status now
     "history": [{"status": "PENDING", "at": createdAt},
                 {"status": "IN_PROGRESS", "at": startedAt},       # if it started
                 {"status": "DONE" | "ERROR" | "KILLED", "at": ...}]}  # if it ended
with every job created up to the twin clock, KILLED ones included; timestamps in the API's
format. Faults never change it. `twin.status_at(job_id, instant)` gives a job's status at
any past instant (None before its creation).
"""

from __future__ import annotations

from jobs_pipeline.twin.clock import AcceleratedClock, Clock, RealClock, SteppedClock
from jobs_pipeline.twin.config import FAULT_KINDS, Burst, FaultConfig, Quirks, TwinConfig
from jobs_pipeline.twin.faults import FaultController
from jobs_pipeline.twin.requests_log import RequestRecord
from jobs_pipeline.twin.twin import Twin

__all__ = [
    "FAULT_KINDS",
    "AcceleratedClock",
    "Burst",
    "Clock",
    "FaultConfig",
    "FaultController",
    "Quirks",
    "RealClock",
    "RequestRecord",
    "SteppedClock",
    "Twin",
    "TwinConfig",
]
