"""Where a job should sit in an API list, from what the archive and this sync already know.

Lists are sorted by createdAt descending, so a job's offset in a list is the number of live jobs
of that list created after it. The archive knows (nearly) every job of the window, so this count
lets the planner jump straight to the page that must hold an old job instead of walking to it.
Estimates can be off by jobs we do not know of yet (or killed since): the planner aims a little
above and checks the page's createdAt span, then corrects with what the page showed.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from datetime import datetime


class PositionIndex:
    def __init__(self, created: Iterable[datetime]):
        # Ascending; position = count strictly newer.
        self._asc = sorted(created)

    def __len__(self) -> int:
        return len(self._asc)

    def position(self, created_at: datetime) -> int:
        """Offset of a job created at `created_at`: the number of indexed jobs created after it."""
        return len(self._asc) - bisect_left(self._asc, created_at) - self._count_equal(created_at)

    def _count_equal(self, created_at: datetime) -> int:
        i = bisect_left(self._asc, created_at)
        n = 0
        while i + n < len(self._asc) and self._asc[i + n] == created_at:
            n += 1
        return n
