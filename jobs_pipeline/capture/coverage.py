"""Which createdAt ranges of which list a sync has provably seen in full.

The API lists are sorted by createdAt descending. A page proves that no row of its list lies
strictly between its oldest and newest createdAt other than those it returned; the first page of a
list also proves nothing newer exists, and a short page proves nothing older exists. Contiguous
pages (checked by the walker's overlap) merge into one proof. A job the archive knew, whose
createdAt lies inside a proven range of a list that must contain it, and that was not returned,
is gone from that list: this is the only ground on which the planner infers KILLED.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from jobs_pipeline.api.models import Page

ALL = "ALL"


def list_key(status: str | None, target_id: str | None) -> str:
    if target_id is not None:
        return f"target:{target_id}" + (f"/{status}" if status else "")
    return status or ALL


@dataclass(frozen=True, slots=True)
class Span:
    """Open interval (older, newer) of createdAt; None means unbounded on that side."""

    older: datetime | None
    newer: datetime | None

    def contains(self, created_at: datetime) -> bool:
        if self.older is not None and not created_at > self.older:
            return False
        return not (self.newer is not None and not created_at < self.newer)


def page_span(page: Page) -> Span | None:
    """The range a single page proves; None for an empty non-final page (proves nothing)."""
    if page.rejects:
        # A row we could not read (or a duplicate standing in for another row) may be any job of
        # this range, a known active one included: the page proves nothing, or that job would be
        # inferred KILLED while it is alive.
        return None
    if not page.jobs and page.row_count == 0:
        # Empty page: if it is the head, the whole list is empty; else the list ends above it.
        return Span(older=None, newer=None) if page.offset == 0 else None
    created = [job.created_at for job in page.jobs]
    newer = None if page.offset == 0 else max(created)
    older = None if page.is_last else min(created)
    return Span(older=older, newer=newer)


@dataclass
class Coverage:
    spans: dict[str, list[Span]] = field(default_factory=dict)

    def add(self, key: str, span: Span | None) -> None:
        if span is not None:
            self.spans.setdefault(key, []).append(span)

    def covers(self, key: str, created_at: datetime) -> bool:
        return any(span.contains(created_at) for span in self.spans.get(key, ()))

    def covers_range(self, key: str, older: datetime, newer: datetime) -> bool:
        """One proof spans all of [older, newer]: two proofs meeting the ends may leave a hole."""
        return any(span.contains(older) and span.contains(newer) for span in self.spans.get(key, ()))

    def proves_absent(self, created_at: datetime, target_id: str | None) -> bool:
        """True when some list that must hold this job, if it still existed, was seen around it."""
        if self.covers(ALL, created_at):
            return True
        if target_id is not None and self.covers(list_key(None, target_id), created_at):
            return True
        return all(self.covers(status, created_at) for status in ("PENDING", "IN_PROGRESS", "DONE", "ERROR"))
