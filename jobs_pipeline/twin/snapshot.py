"""What GET /v1/jobs can see at one instant, with its orderings cached.

A snapshot is built for one (clock instant, simulation version) pair: during a sync the clock
is usually frozen, so every page of every slice reuses the same lists and rendered rows. Under
a moving clock a snapshot is rebuilt per request, so it does only the work a page needs:
- no filter, or DONE (the bulk of the window): walk the window newest-first and stop once
  offset + limit rows are found (at most ~1,100 rows, a page can reach no deeper);
- PENDING, IN_PROGRESS, ERROR (rare): sort their status index, filtered to the window;
- targetId: sort that target's few jobs.
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any

from jobs_pipeline.twin.job import KILLED, SimJob
from jobs_pipeline.twin.store import JobStore
from jobs_pipeline.twin.timefmt import MS_PER_DAY

_sort_key = attrgetter("sort_key")


class _WindowWalk:
    """Visible jobs of one status (or all), newest first, found lazily."""

    def __init__(self, live: list[SimJob], lo: int, hi: int, status: str | None) -> None:
        self.rows: list[SimJob] = []
        self._live = live
        self._lo = lo
        self._next = hi - 1
        self._status = status

    def first(self, count: int) -> list[SimJob]:
        rows, live, lo, status = self.rows, self._live, self._lo, self._status
        index = self._next
        while len(rows) < count and index >= lo:
            job = live[index]
            index -= 1
            if job.status != KILLED and (status is None or job.status == status):
                rows.append(job)
        self._next = index
        return rows


class Snapshot:
    def __init__(self, store: JobStore, now_ms: int, version: int, extra_fields: bool) -> None:
        self.now_ms = now_ms
        self.version = version
        self._store = store
        self._extra_fields = extra_fields
        self._lo, self._hi = store.window(now_ms)
        self._walks: dict[str | None, _WindowWalk] = {}
        self._sorted: dict[tuple[str, str], list[SimJob]] = {}
        self._rendered: dict[str, dict[str, Any]] = {}

    def page(self, status: str | None, target_id: str | None, offset: int, limit: int) -> list[SimJob]:
        """Visible jobs matching the filters, newest first (ties: id descending), sliced."""
        if target_id is not None:
            rows = self._sorted_rows("target", target_id)
            if status is not None:
                rows = [job for job in rows if job.status == status]
        elif status in self._store.by_status:
            rows = self._sorted_rows("status", status)
        else:
            walk = self._walks.get(status)
            if walk is None:
                walk = self._walks[status] = _WindowWalk(self._store.live, self._lo, self._hi, status)
            rows = walk.first(offset + limit)
        return rows[offset : offset + limit]

    def all(self, status: str | None = None, target_id: str | None = None) -> list[SimJob]:
        return self.page(status, target_id, 0, len(self._store.live))

    def _sorted_rows(self, kind: str, value: str) -> list[SimJob]:
        cached = self._sorted.get((kind, value))
        if cached is None:
            pool = self._store.by_target.get(value, ()) if kind == "target" else self._store.by_status[value]
            oldest = self.now_ms - MS_PER_DAY
            cached = [job for job in pool if oldest < job.created_ms <= self.now_ms and job.status != KILLED]
            cached.sort(key=_sort_key, reverse=True)
            self._sorted[(kind, value)] = cached
        return cached

    def render(self, job: SimJob) -> dict[str, Any]:
        """The job's JSON object at this instant (shared: callers must copy before mutating)."""
        row = self._rendered.get(job.id)
        if row is None:
            row = self._rendered[job.id] = job.render(self.now_ms, self._extra_fields)
        return row
