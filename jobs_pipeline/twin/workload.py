"""Who creates which job on what: job attributes, targets, users, follow-ups, scripted jobs.

Attributes are drawn from one seeded RNG per source (regular load, each burst, follow-ups,
scripted jobs), consumed in the simulation's event order, which is itself independent of how
the clock is stepped: a seed always gives the same jobs. Targets repeat the way a real tenant's do: documents get an
EXTRACTION then (often) an EMBEDDING, are sometimes re-extracted or summarised later, and
SYNC/IMPORT/folder EMBEDDING jobs hit a small pool of folders.
"""

from __future__ import annotations

import random
from bisect import bisect
from collections import deque
from typing import Any

from jobs_pipeline.twin.arrivals import Arrival
from jobs_pipeline.twin.catalog import (
    FAILURE_POINT,
    FOLLOW_UP_DELAY_SECONDS,
    FOLLOW_UP_PROBABILITY,
    KINDS,
    ROOT_CUMULATIVE_WEIGHTS,
    ROOT_TYPES,
    JobKind,
    draw_progress_fractions,
    kind_of,
    log_uniform,
)
from jobs_pipeline.twin.ids import IdFactory
from jobs_pipeline.twin.job import DONE, ERROR, KILLED, SimJob
from jobs_pipeline.twin.timefmt import seconds_to_ms

USER_COUNT = 9
FOLDER_COUNT = 24
RECENT_DOCUMENTS = 400
# Share of document jobs that hit an already known document instead of a new one.
REUSE_DOCUMENT = {"EXTRACTION": 0.12, "GENERATION": 0.7, "TRANSCRIPTION": 0.0}
# Kills: "cancel soon after creation" (hits queued jobs, or running ones when there is no
# queue) and "kill part-way through the run". Together about 1 % of jobs.
CANCEL_SOON_PROBABILITY = 0.005
KILL_RUNNING_PROBABILITY = 0.006
CANCEL_SOON_SECONDS = (2.0, 900.0)
# RNG streams, kept apart so that e.g. a burst never shifts the regular load.
_FOLLOW_UP_STREAM = 1_000_003
_SCRIPTED_STREAM = 2_000_003


class Workload:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._job_ids = IdFactory(seed, "job")
        self._doc_ids = IdFactory(seed, "document")
        self._seq = 0
        users = IdFactory(seed, "user")
        # Deterministic instants: ids of long-lived entities don't depend on the clock.
        self.users = tuple(users.next(1_727_000_000_000 + i) for i in range(USER_COUNT))
        folder_ids = IdFactory(seed, "folder")
        rng = random.Random(seed * 31 + 7)
        self.folders = tuple(
            (folder_ids.next(1_725_000_000_000 + i * 3_600_000), self._pick_user(rng))
            for i in range(FOLDER_COUNT)
        )
        self._rngs: dict[int, random.Random] = {}
        self._recent_documents: deque[tuple[str, str]] = deque(maxlen=RECENT_DOCUMENTS)
        # Scripted jobs draw ids and sequence numbers from their own spaces so that adding one
        # never perturbs the ids or attributes of the simulated background load.
        self._scripted = 0
        self._scripted_job_ids = IdFactory(seed, "scripted-job")
        self._scripted_doc_ids = IdFactory(seed, "scripted-document")

    def _rng(self, stream: int) -> random.Random:
        rng = self._rngs.get(stream)
        if rng is None:
            rng = self._rngs[stream] = random.Random((self.seed * 1_000_000_007 + stream) * 4_294_967_311)
        return rng

    def _pick_user(self, rng: random.Random) -> str:
        # A few heavy users and a long tail, like a real tenant.
        return self.users[min(USER_COUNT - 1, int(rng.expovariate(0.45)))]

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _new_document(self, created_ms: int, rng: random.Random) -> tuple[str, str]:
        document = (self._doc_ids.next(created_ms), self._pick_user(rng))
        self._recent_documents.append(document)
        return document

    def _target(self, kind: JobKind, created_ms: int, rng: random.Random) -> tuple[str, str]:
        if kind.target == "folder":
            return rng.choice(self.folders)
        reuse = REUSE_DOCUMENT.get(kind.name, 0.0)
        if self._recent_documents and rng.random() < reuse:
            return rng.choice(self._recent_documents)
        return self._new_document(created_ms, rng)

    def _build(
        self,
        kind: JobKind,
        rng: random.Random,
        created_ms: int,
        target: tuple[str, str],
        *,
        queue_name: str,
        follow_up_allowed: bool,
    ) -> SimJob:
        planned_ms = max(1_000, seconds_to_ms(kind.draw_seconds(rng)))
        fails = rng.random() < kind.failure_rate
        run_ms = max(500, int(planned_ms * rng.uniform(*FAILURE_POINT))) if fails else planned_ms
        cancel_at_ms = None
        kill_fraction = None
        draw = rng.random()
        if draw < CANCEL_SOON_PROBABILITY:
            cancel_at_ms = created_ms + seconds_to_ms(log_uniform(rng, *CANCEL_SOON_SECONDS))
        elif draw < CANCEL_SOON_PROBABILITY + KILL_RUNNING_PROBABILITY:
            kill_fraction = rng.uniform(0.05, 0.9)
        return SimJob(
            seq=self._next_seq(),
            job_id=self._job_ids.next(created_ms),
            user_id=target[1],
            target_id=target[0],
            job_type=kind.name,
            created_ms=created_ms,
            planned_ms=planned_ms,
            run_ms=run_ms,
            outcome=ERROR if fails else DONE,
            cancel_at_ms=cancel_at_ms,
            kill_fraction=kill_fraction,
            follow_up=follow_up_allowed and rng.random() < FOLLOW_UP_PROBABILITY,
            queue_name=queue_name,
            # What only the API view needs (metadata, error text, progress) is drawn from this
            # seed the first time the job is shown, not while simulating.
            details=(kind, rng.getrandbits(48)),
        )

    def root_job(self, arrival: Arrival) -> SimJob:
        rng = self._rng(arrival.stream)
        if arrival.kind == "root":
            job_type = ROOT_TYPES[bisect(ROOT_CUMULATIVE_WEIGHTS, rng.random() * ROOT_CUMULATIVE_WEIGHTS[-1])]
        else:
            job_type = arrival.job_type or "EXTRACTION"
        kind = kind_of(job_type)
        if arrival.kind == "burst":
            # A batch import: every job is on a brand-new document.
            target = self._new_document(arrival.at_ms, rng)
        elif arrival.kind == "burst_import":
            target = rng.choice(self.folders)
        else:
            target = self._target(kind, arrival.at_ms, rng)
        return self._build(
            kind,
            rng,
            arrival.at_ms,
            target,
            queue_name="bulk" if arrival.kind != "root" else "default",
            follow_up_allowed=kind.name == "EXTRACTION",
        )

    def follow_up(self, parent: SimJob, finished_ms: int) -> SimJob:
        """The EMBEDDING of a document whose EXTRACTION just finished DONE."""
        rng = self._rng(_FOLLOW_UP_STREAM)
        created_ms = finished_ms + seconds_to_ms(rng.uniform(*FOLLOW_UP_DELAY_SECONDS))
        return self._build(
            KINDS["EMBEDDING"],
            rng,
            created_ms,
            (parent.target_id, parent.user_id),
            queue_name=parent.queue_name,
            follow_up_allowed=False,
        )

    def scripted_job(
        self,
        *,
        job_type: str,
        target_id: str | None,
        user_id: str | None,
        created_ms: int,
        queue_ms: int,
        run_ms: int,
        outcome: str,
        kill_after_ms: int | None,
        metadata: dict[str, Any] | None,
        error: str | None,
        progress: bool,
    ) -> SimJob:
        """A job whose whole timeline the caller dictates (it bypasses the worker pool)."""
        self._scripted += 1
        rng = self._rng(_SCRIPTED_STREAM)
        kind = kind_of(job_type)
        if target_id is None:
            target_id = self._scripted_doc_ids.next(created_ms)
        if kill_after_ms is None and outcome == KILLED:
            # "KILLED" without an instant: killed as it would have finished.
            kill_after_ms = queue_ms + run_ms
        if metadata is None:
            metadata = kind.draw_metadata(rng)
        fractions = draw_progress_fractions(rng, max(1, run_ms)) if progress else None
        return SimJob(
            seq=-self._scripted,
            job_id=self._scripted_job_ids.next(created_ms),
            user_id=user_id or self._pick_user(rng),
            target_id=target_id,
            job_type=job_type,
            created_ms=created_ms,
            planned_ms=max(1, run_ms),
            run_ms=run_ms,
            outcome=ERROR if outcome == ERROR else DONE,
            error=(error or rng.choice(kind.errors)) if outcome == ERROR else None,
            metadata=metadata,
            progress_fractions=fractions,
            pooled=False,
            queue_ms=queue_ms,
            cancel_at_ms=created_ms + kill_after_ms if kill_after_ms is not None else None,
            queue_name="default",
        )
