"""Walking one slice of GET /v1/jobs page by page, and knowing afterwards whether the cap cut it.

A slice is one (status, targetId) filter. Pages are requested at offsets start, start+size, ...
until a short page (the slice ended) or until the next offset would pass the API's cap of 1000
(`hit_cap`: rows beyond the last page may exist but this query can never reach them; the capture
planner must cover them with narrower slices). With the default page size of 100 a walk reaches
the full 1,100 rows (offset 1000 + limit 100); a page size that does not divide 1000 reaches less.

Usage::

    walk = client.iter_slice(status="DONE")
    for page in walk:        # a SliceWalk is an Iterator[Page]; it fetches lazily
        ...
    walk.hit_cap             # True if the walk stopped at the cap with a full last page
    walk.pages               # every page fetched, in order

Drift (rows shifting between pages as new jobs arrive) is not repaired here: pages carry their
offsets and observation times, and repair belongs to the capture planner.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from jobs_pipeline.api.models import MAX_OFFSET, Page
from jobs_pipeline.api.query import check_limit, check_offset, check_status, check_target_id


class PageSource(Protocol):
    def list_jobs(
        self, *, status: str | None = None, target_id: str | None = None, limit: int = 100, offset: int = 0
    ) -> Page: ...


class SliceWalk(Iterator[Page]):
    """A lazy page iterator over one slice that records what it saw (`pages`, `hit_cap`, `done`)."""

    def __init__(
        self,
        source: PageSource,
        *,
        status: str | None = None,
        target_id: str | None = None,
        page_size: int = 100,
        start_offset: int = 0,
    ) -> None:
        # Validate eagerly: a bad slice should fail where it is built, not at the first next().
        check_status(status)
        check_target_id(target_id)
        check_limit(page_size, name="page_size")
        check_offset(start_offset, name="start_offset")
        self._source = source
        self.status = status
        self.target_id = target_id
        self.page_size = page_size
        self.start_offset = start_offset
        self.pages: list[Page] = []
        self.hit_cap = False
        self.done = False
        self._next_offset = start_offset

    def __iter__(self) -> SliceWalk:
        return self

    def __next__(self) -> Page:
        if self.done:
            raise StopIteration
        page = self._source_page(self._next_offset)
        self.pages.append(page)
        following = self._next_offset + self.page_size
        if page.is_last:
            self.done = True
        elif following > MAX_OFFSET:
            self.done = True
            self.hit_cap = True
        else:
            self._next_offset = following
        return page

    @property
    def rows(self) -> int:
        """Rows received over the walk (parsed or rejected)."""
        return sum(page.row_count for page in self.pages)

    def _source_page(self, offset: int) -> Page:
        return self._source.list_jobs(
            status=self.status, target_id=self.target_id, limit=self.page_size, offset=offset
        )
