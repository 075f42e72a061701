"""Walk one API list (a status slice, a target, or the whole list) page by page without skipping rows.

Offsets drift while we page: a new job pushes every row down, a job that changes status or is
KILLED pulls the rows below it up. Pushed rows are only seen twice (harmless); pulled rows could
be skipped. Consecutive pages therefore overlap by a few rows, and each page must contain at least
one row of the page before it; when it does not, rows were pulled up across the boundary and the
walker steps back and asks again. Contiguous pages then prove their whole createdAt range.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from jobs_pipeline.api.models import MAX_LIMIT, MAX_OFFSET, Page
from jobs_pipeline.capture.coverage import Coverage, Span, list_key, page_span
from jobs_pipeline.capture.ledger import RequestLedger
from jobs_pipeline.capture.types import Gap

OVERLAP = 5
MAX_REPAIRS_PER_BOUNDARY = 3
# A page with rows that cannot be parsed (or a duplicate id standing in for a row) is asked for
# again this many times: such damage is usually one bad response, and the rows it hides may be
# new jobs that no later sync would look for.
MAX_REFETCHES_PER_PAGE = 2


@dataclass
class WalkOutcome:
    key: str
    pages: int = 0
    repairs: int = 0
    reached_end: bool = False  # a short page: the list has nothing older
    reached_stop: bool = False  # went below the requested createdAt
    hit_cap: bool = False  # offset cap reached before either
    oldest_seen: datetime | None = None
    gaps: list[Gap] = field(default_factory=list)


@dataclass
class _Chain:
    """A run of provably contiguous pages: its span is the union of theirs."""

    newer: datetime | None
    older: datetime | None
    open_older: bool = False


def walk(
    ledger: RequestLedger,
    coverage: Coverage,
    *,
    status: str | None = None,
    target_id: str | None = None,
    start_offset: int = 0,
    stop_before: datetime | None = None,
    max_pages: int | None = None,
    must_reach_above: datetime | None = None,
) -> WalkOutcome:
    """Page from `start_offset` down until a short page, a row older than `stop_before`, the
    offset cap, or `max_pages`. Records what it proves into `coverage`; raises BudgetExhausted
    from the ledger (what was fetched before stays recorded)."""
    key = list_key(status, target_id)
    outcome = WalkOutcome(key=key)
    offset = min(max(start_offset, 0), MAX_OFFSET)
    previous: Page | None = None
    chain: _Chain | None = None
    repairs_here = 0
    refetches_here = 0
    try:
        while True:
            page = ledger.fetch(status=status, target_id=target_id, offset=offset)
            outcome.pages += 1
            if page.rejects and refetches_here < MAX_REFETCHES_PER_PAGE:
                refetches_here += 1
                continue
            refetches_here = 0
            span = page_span(page)
            if (
                previous is None
                and must_reach_above is not None
                and offset > 0
                and page.jobs
                and max(j.created_at for j in page.jobs) < must_reach_above
                and repairs_here < MAX_REPAIRS_PER_BOUNDARY
            ):
                # The estimate was too deep: step back, further each time.
                repairs_here += 1
                outcome.repairs += 1
                offset = max(0, offset - (MAX_LIMIT - OVERLAP) * 2**repairs_here)
                continue
            if previous is not None and page.jobs and previous.jobs:
                verdict = _join(previous, page)
                if verdict == "pulled_up":
                    if repairs_here < MAX_REPAIRS_PER_BOUNDARY and offset > 0:
                        repairs_here += 1
                        outcome.repairs += 1
                        offset = max(0, offset - (MAX_LIMIT - OVERLAP) // 2)
                        continue
                    # Could not re-join: close the chain, say what was not proven, go on.
                    _close(coverage, key, chain)
                    outcome.gaps.append(
                        Gap(key, "drift", min(j.created_at for j in page.jobs), previous.jobs[-1].created_at)
                    )
                    chain = None
                elif verdict == "above":
                    # Everything moved down by more than a page: this page is all above the last
                    # row we had; keep going down from the same anchor.
                    offset = min(offset + MAX_LIMIT - OVERLAP, MAX_OFFSET)
                    continue
            repairs_here = 0
            if page.rejects:
                # An unreadable row breaks the proof: a chain must not bridge over this page, and
                # the job behind that row was not seen: say so (the next sync looks again).
                _close(coverage, key, chain)
                chain = None
                outcome.gaps.append(_unreadable_gap(key, page, previous))
            else:
                chain = _extend(chain, span)
            if page.jobs:
                oldest = min(j.created_at for j in page.jobs)
                if outcome.oldest_seen is None or oldest < outcome.oldest_seen:
                    outcome.oldest_seen = oldest
                previous = page
            if page.is_last:
                outcome.reached_end = True
                break
            deepest = outcome.oldest_seen
            if stop_before is not None and deepest is not None and deepest < stop_before:
                outcome.reached_stop = True
                break
            if offset >= MAX_OFFSET:
                outcome.hit_cap = True
                break
            if max_pages is not None and outcome.pages >= max_pages:
                break
            offset = min(offset + MAX_LIMIT - OVERLAP, MAX_OFFSET)
    finally:
        _close(coverage, key, chain)
    return outcome


def _unreadable_gap(key: str, page: Page, previous: Page | None) -> Gap:
    """The createdAt range a page with unreadable rows leaves unseen: from its oldest readable row
    (or open, on the list's last page) up to the previous page's oldest row (or open, at the head)."""
    created = [job.created_at for job in page.jobs]
    older = min(created) if created and not page.is_last else None
    newer = min(j.created_at for j in previous.jobs) if previous is not None and previous.jobs else None
    return Gap(key, "rejected", older, newer)


def _join(previous: Page, page: Page) -> str:
    """How `page` sits against the page fetched just before it, deeper in the same list."""
    before = {job.id for job in previous.jobs}
    if any(job.id in before for job in page.jobs):
        return "contiguous"
    if min(job.created_at for job in page.jobs) >= min(job.created_at for job in previous.jobs):
        return "above"
    return "pulled_up"


def _extend(chain: _Chain | None, span: Span | None) -> _Chain | None:
    if span is None:
        return chain
    if chain is None:
        return _Chain(newer=span.newer, older=span.older, open_older=span.older is None)
    chain.older = span.older
    chain.open_older = span.older is None
    return chain


def _close(coverage: Coverage, key: str, chain: _Chain | None) -> None:
    if chain is not None:
        coverage.add(key, Span(older=None if chain.open_older else chain.older, newer=chain.newer))
