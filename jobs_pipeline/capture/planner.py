"""One sync = one poll: decide what to fetch so that every job and every status it holds at the
poll instant is seen, at the lowest request cost, inside the API's caps.

Why not just walk the list: one query reaches 1,100 rows, there is no `updatedSince`, a job that
finishes keeps its createdAt place, and KILLED jobs vanish. So, in order of priority:

1. New jobs. Everything created since the previous poll sits at the head of the unfiltered list:
   walk it down to the previous poll's server time (the watermark). When that is deeper than the
   cap (a burst), walk the four status slices instead: each is shorter than the whole list.
2. Jobs that were active at the previous poll and have not shown up yet. The archive knows
   (almost) every job of the window, so it knows where each one must sit in the whole list; the
   planner fetches just the pages around those positions, clustered, and checks each page's
   createdAt span before trusting it. Jobs too deep for the cap are found by `targetId` probes
   (one request covers all jobs of a target) or, when that is costlier, through the status slices.
3. Whatever is provably absent from a list that must hold it is gone: KILLED while younger than
   24 h by the server's clock (inferred), EXPIRED after.
4. With budget to spare after a sync with gaps (the first sync, a burst), verification: full
   active slices, and target probes that discover older jobs the cap hides.

Every page passes through the ledger (budget, counts, latest observation per job) and proves a
createdAt span of its list (coverage); nothing is inferred without such a proof, and what could
not be seen is recorded as a gap, never silently.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from statistics import median

from jobs_pipeline.api.models import (
    ACTIVE_STATUSES,
    MAX_LIMIT,
    MAX_OFFSET,
    RETENTION_HOURS,
    JobStatus,
)
from jobs_pipeline.capture.coverage import Coverage, list_key, page_span
from jobs_pipeline.capture.ledger import BudgetExhausted, JobsSource, RequestLedger
from jobs_pipeline.capture.positions import PositionIndex
from jobs_pipeline.capture.types import CaptureResult, CaptureState, Gap, KnownJob, Vanished
from jobs_pipeline.capture.walk import OVERLAP, WalkOutcome, walk

RETENTION = timedelta(hours=RETENTION_HOURS)
# The Date header has whole seconds, and a sync lasts a few seconds: step the watermark back a
# little so a job created during the previous sync's first second is never between two syncs.
WATERMARK_MARGIN = timedelta(seconds=5)
# A job this close to the 24 h edge may have aged out rather than been killed: do not call it KILLED.
EXPIRY_AMBIGUITY = timedelta(seconds=5)
REACH = MAX_OFFSET + MAX_LIMIT  # rows one query can reach
# Target discovery goes on while the last DISCOVERY_WINDOW probes found at least this many
# hidden jobs per probe on average.
DISCOVERY_WINDOW = 20
MIN_DISCOVERY_YIELD = 0.25


def default_budget(rate_limit_per_minute: int, poll_interval_seconds: float) -> int:
    """Requests one sync may spend: 90 % of what the rate limit allows over one poll interval,
    leaving headroom for retries and for anything else using the same key."""
    return max(10, math.floor(rate_limit_per_minute * poll_interval_seconds / 60 * 0.9))


@dataclass(frozen=True, slots=True)
class PlannerSettings:
    budget: int = 450
    # Rows of slack above an estimated position: estimates miss jobs we have not seen yet.
    position_margin: int = 8
    # Share of the remaining budget a sync with gaps may spend on discovering targets.
    discovery_share: float = 0.5
    max_position_rounds: int = 4
    # A job already seen running can only move to a final status, and the API dates that move
    # exactly (completedAt): looking for it one poll later loses no state and no precision. So a
    # running job out of the head's reach is looked for only once it has gone this long unseen
    # (or for free, when a page fetched anyway covers it). None: look every poll.
    running_recheck_after: timedelta | None = None
    # Queued jobs hidden behind a capped PENDING slice: how many (oldest first) to probe per sync.
    behind_cap_probes: int = 3


@dataclass
class _Sync:
    """Working state of one sync."""

    state: CaptureState
    settings: PlannerSettings
    ledger: RequestLedger
    coverage: Coverage = field(default_factory=Coverage)
    gaps: list[Gap] = field(default_factory=list)
    notes: dict[str, int] = field(default_factory=dict)
    # Lists walked whole (from their head, or on from rows already in hand, down to their end or
    # the cap): what a walk of a range does not prove about the rest of the list is not here.
    walked: dict[str, WalkOutcome] = field(default_factory=dict)
    # Per status slice, the oldest createdAt any walk reached when stopped by the offset cap:
    # nothing older in that slice can be reached by any query this sync.
    cap_floor: dict[str, datetime] = field(default_factory=dict)
    recheck_running: bool = False
    deferred: set[str] = field(default_factory=set)  # known jobs knowingly left for a later sync

    def note(self, key: str, n: int = 1) -> None:
        self.notes[key] = self.notes.get(key, 0) + n

    @contextmanager
    def spending(self, purpose: str) -> Iterator[None]:
        """Count the requests made inside as `requests.<purpose>` in the plan notes (also when
        the budget runs out inside), so a sync's cost can be read by purpose afterwards."""
        before = self.ledger.requests
        try:
            yield
        finally:
            if self.ledger.requests > before:
                self.note(f"requests.{purpose}", self.ledger.requests - before)

    def walk(
        self,
        *,
        status: str | None = None,
        target_id: str | None = None,
        start_offset: int = 0,
        stop_before: datetime | None = None,
        must_reach_above: datetime | None = None,
        from_head: bool = False,
    ) -> WalkOutcome:
        """Walk one list and record what it proves. A walk that starts at the head (or on from
        rows already in hand: `from_head`) and goes on to the list's end or the cap is recorded
        in `walked` as a walk of the whole list; a walk of a range is not."""
        outcome = walk(
            self.ledger,
            self.coverage,
            status=status,
            target_id=target_id,
            start_offset=start_offset,
            stop_before=stop_before,
            must_reach_above=must_reach_above,
        )
        stopped_early = stop_before is not None and not (outcome.reached_end or outcome.hit_cap)
        if (start_offset <= 0 or from_head) and not stopped_early:
            self.walked[outcome.key] = outcome
        if outcome.hit_cap and outcome.oldest_seen is not None and target_id is None and status is not None:
            floor = self.cap_floor.get(status)
            self.cap_floor[status] = outcome.oldest_seen if floor is None else min(floor, outcome.oldest_seen)
        self.gaps.extend(outcome.gaps)
        self.note("repairs", outcome.repairs)
        return outcome

    @property
    def now(self) -> datetime:
        observed = self.ledger.first_observed_at
        return observed if observed is not None else datetime.now(UTC)

    def is_expired(self, created_at: datetime) -> bool:
        return created_at <= self.now - RETENTION + EXPIRY_AMBIGUITY

    def unresolved(self, jobs: Iterable[KnownJob]) -> list[KnownJob]:
        """Jobs neither seen in this sync nor provably absent, nor aged out."""
        return [
            k
            for k in jobs
            if k.job_id not in self.ledger.seen
            and not self.is_expired(k.created_at)
            and not self.coverage.proves_absent(k.created_at, k.target_id)
        ]


def capture(
    source: JobsSource,
    state: CaptureState,
    settings: PlannerSettings | None = None,
    *,
    open_gaps: Iterable[Gap] = (),
    sync_id: str | None = None,
    local_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> CaptureResult:
    """Run one sync's requests against `source` and return what it learnt (nothing is written)."""
    settings = settings or PlannerSettings()
    started = local_clock()
    rate_limited_before = getattr(source, "responses_429", 0)
    sync = _Sync(state=state, settings=settings, ledger=RequestLedger(source, settings.budget))
    open_gaps = list(open_gaps)
    try:
        if state.last_observed_at is None:
            _backfill(sync)
        else:
            _steady(sync, state.last_observed_at, open_gaps)
    except BudgetExhausted:
        sync.gaps.append(Gap("*", "budget", None, None))
        sync.note("budget_exhausted")
    vanished = _vanished(sync)
    unresolved = [
        k
        for k in sync.unresolved(k for k in state.known.values() if _due(sync, k))
        if k.job_id not in sync.deferred
    ]
    if unresolved:
        # Should not happen with budget to spare; never silent when it does.
        sync.gaps.append(
            Gap(
                "known-active",
                "unresolved",
                min(k.created_at for k in unresolved),
                max(k.created_at for k in unresolved),
            )
        )
        sync.note("unresolved_active", len(unresolved))
    return CaptureResult(
        tenant=state.tenant,
        sync_id=sync_id or uuid.uuid4().hex,
        started_at=started,
        finished_at=local_clock(),
        observed_at=sync.now,
        requests=sync.ledger.requests,
        pages=len(sync.ledger.pages),
        observations=list(sync.ledger.seen.values()),
        vanished=vanished,
        gaps=_merge_gaps(sync.gaps),
        rejects=sync.ledger.rejects,
        rate_limited=getattr(source, "responses_429", 0) - rate_limited_before,
        plan_notes={"budget": settings.budget, **sync.notes},
    )


# --- first sync -------------------------------------------------------------------------------


def _backfill(sync: _Sync) -> None:
    """Empty archive: reach as much of the 24 h window as the caps allow."""
    with sync.spending("head"):
        head = sync.walk()
    if head.reached_end or head.oldest_seen is None:
        return
    with sync.spending("status_slices_below_head"):
        _continue_below(sync, head.oldest_seen, stop_before=None, gap_from=sync.now - RETENTION)
    if any(g.reason == "cap" for g in sync.gaps):
        with sync.spending("discovery"):
            _discover_targets(sync)


def _continue_below(
    sync: _Sync, boundary: datetime, *, stop_before: datetime | None, gap_from: datetime
) -> None:
    """The whole list stopped at the cap at `boundary`; each status slice is shorter, so each
    reaches further back. Start each one just above the rows the whole-list walk already showed
    (they are all in hand), and record what even the slices cannot reach."""
    for status in (JobStatus.PENDING, JobStatus.IN_PROGRESS, JobStatus.ERROR, JobStatus.DONE):
        above = sum(
            1 for o in sync.ledger.seen.values() if o.job.status == status and o.job.created_at > boundary
        )
        outcome = sync.walk(
            status=status,
            start_offset=above - OVERLAP,
            must_reach_above=boundary,
            stop_before=stop_before,
            from_head=True,
        )
        if outcome.hit_cap:
            sync.gaps.append(Gap(status, "cap", gap_from, outcome.oldest_seen))


def _discover_targets(sync: _Sync) -> None:
    """Spend spare budget probing targets of the oldest jobs seen: their other jobs may lie past
    the cap of every slice, and a target's own list is short."""
    allowance = int(sync.ledger.remaining * sync.settings.discovery_share)
    by_target: dict[str, datetime] = {}
    for obs in sync.ledger.seen.values():
        t = obs.job.target_id
        if t is not None and (t not in by_target or obs.job.created_at < by_target[t]):
            by_target[t] = obs.job.created_at
    before = len(sync.ledger.seen)
    probes = 0
    recent_yield: list[int] = []
    # Nearest the hidden range first: a document's older job (its extraction) hides behind the
    # cap while its newer one (the embedding) is in view.
    for target in sorted(by_target, key=lambda t: by_target[t]):
        if probes >= allowance:
            break
        if list_key(None, target) in sync.walked:
            continue
        n = len(sync.ledger.seen)
        sync.walk(target_id=target)
        probes += 1
        recent_yield = [*recent_yield[-(DISCOVERY_WINDOW - 1) :], len(sync.ledger.seen) - n]
        if (
            len(recent_yield) == DISCOVERY_WINDOW
            and sum(recent_yield) < DISCOVERY_WINDOW * MIN_DISCOVERY_YIELD
        ):
            break  # the probes stopped paying for themselves
    sync.note("discovery_probes", probes)
    sync.note("discovered_jobs", len(sync.ledger.seen) - before)


# --- later syncs ------------------------------------------------------------------------------


def _steady(sync: _Sync, last_observed_at: datetime, open_gaps: list[Gap]) -> None:
    watermark = last_observed_at - WATERMARK_MARGIN
    with sync.spending("head"):
        head = sync.walk(stop_before=watermark)
    if head.hit_cap and head.oldest_seen is not None:
        # More new rows than one query reaches (a burst): go on through the status slices.
        sync.note("head_over_cap")
        with sync.spending("status_slices_below_head"):
            _continue_below(sync, head.oldest_seen, stop_before=watermark, gap_from=watermark)
    running = [k for k in sync.state.known.values() if k.status == JobStatus.IN_PROGRESS]
    # Once one running job is due, look for all of them: one batch shares its pages.
    sync.recheck_running = any(_due(sync, k) for k in running)
    active = [k for k in sync.state.known.values() if _due(sync, k)]
    # Whole active slices first when they are the cheaper way: the ranges revisited next then
    # need no second look at those slices.
    with sync.spending("active_slices"):
        _check_active_slices_first(sync, active)
    # Jobs hidden past the cap of a DONE or ERROR slice are finished and only sink deeper as new
    # jobs pile on top: no later query can reach them, so those gaps are not revisited. Hidden
    # queued or running jobs will move into a shorter slice, and a row that could not be read
    # (or a range lost to drift) is still where it was: look for them again.
    hidden = [
        g
        for g in open_gaps
        if g.slice != "known-active"
        and not (g.reason == "cap" and g.slice in (JobStatus.DONE, JobStatus.ERROR))
    ]
    if hidden:
        # One pass per range earlier syncs could not see (overlapping ones merged): a union of
        # two bursts hours apart would re-read every finished job between them.
        with sync.spending("gap_revisits"):
            for gap in _merge_ranges(hidden):
                _revisit(sync, gap, watermark)
    elif not sync.state.last_coverage_complete and not open_gaps:
        with sync.spending("gap_revisits"):
            _revisit(sync, Gap("*", "revisit", None, None), watermark)

    with sync.spending("positions"):
        _resolve_by_position(sync, active)
    with sync.spending("deep"):
        _resolve_deep(sync, active)


def _due(sync: _Sync, k: KnownJob) -> bool:
    """Must this known job be looked for in this sync?"""
    if k.status == JobStatus.PENDING:
        return True  # its next state (running) is one we would otherwise never see
    if k.status != JobStatus.IN_PROGRESS:
        return False
    recheck = sync.settings.running_recheck_after
    return recheck is None or sync.recheck_running or sync.now - k.last_seen_at >= recheck


def _check_active_slices_first(sync: _Sync, active: list[KnownJob]) -> None:
    """Old jobs still queued or running are spread over the whole list (a slow SYNC job sits
    hours deep) but all sit together in their short status slice. When finding them by position
    would take several pages, one page of each active slice settles every one still active, and
    only those that finished are then looked for by position."""
    pending = sync.unresolved(active)
    if not pending:
        return
    index = _live_index(sync, None)
    margin = sync.settings.position_margin
    position_pages = len(_cluster((index.position(k.created_at) for k in pending), margin))
    # Lifecycle order: a job that moves on between the two walks shows up in the second.
    for status in (JobStatus.PENDING, JobStatus.IN_PROGRESS):
        mine = [k for k in pending if k.status == status]
        slice_pages = _slice_pages(sync, status)
        if mine and status not in sync.walked and position_pages >= 3 and slice_pages < position_pages:
            sync.walk(status=status)
            sync.note("active_slice_checks")
            pending = sync.unresolved(pending)
            position_pages = len(_cluster((index.position(k.created_at) for k in pending), margin))


def _slice_pages(sync: _Sync, status: str) -> int:
    """Pages a walk of a whole status slice should take, from the archive's count of its jobs."""
    known = sum(1 for k in sync.state.known.values() if k.status == status)
    return math.ceil(max(known, 1) / (MAX_LIMIT - OVERLAP))


def _merge_ranges(gaps: list[Gap]) -> list[Gap]:
    """The createdAt ranges of `gaps`, overlapping ones merged (None bounds are open)."""
    lowest, highest = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
    ranges = sorted((g.created_from or lowest, g.created_to or highest) for g in gaps)
    merged: list[list[datetime]] = []
    for older, newer in ranges:
        if merged and older <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], newer)
        else:
            merged.append([older, newer])
    return [
        Gap("*", "revisit", None if older == lowest else older, None if newer == highest else newer)
        for older, newer in merged
    ]


def _revisit(sync: _Sync, gap: Gap, watermark: datetime) -> None:
    """Look again at a createdAt range an earlier sync could not see. Its jobs were hidden in one
    slice then; by now they may be in any status, so each status slice is walked over the range,
    starting where the range should begin in that slice."""
    newest = gap.created_to or watermark
    oldest = gap.created_from or (sync.now - RETENTION)
    for status in (JobStatus.PENDING, JobStatus.IN_PROGRESS, JobStatus.DONE, JobStatus.ERROR):
        if status in sync.walked and sync.walked[status].reached_end:
            continue
        if sync.coverage.covers_range(status, oldest, newest):
            continue  # an earlier walk of this sync already went over the whole range
        floor = sync.cap_floor.get(status)
        if floor is not None and floor > newest:
            # This slice's cap ends above the range: still hidden, and said so.
            sync.gaps.append(Gap(status, "cap", oldest, newest))
            continue
        index = _live_index(sync, status)
        outcome = sync.walk(
            status=status,
            start_offset=index.position(newest) - OVERLAP,
            must_reach_above=newest,
            stop_before=oldest,
        )
        if outcome.hit_cap:
            sync.gaps.append(Gap(status, "cap", oldest, outcome.oldest_seen))
    sync.note("gap_revisits")


def _live_index(sync: _Sync, status: str | None) -> PositionIndex:
    """Positions in a list from everything known alive (archive + this sync)."""
    created: dict[str, datetime] = {}
    for k in sync.state.known.values():
        if k.status != JobStatus.KILLED and (status is None or k.status == status):
            created[k.job_id] = k.created_at
    for job_id, obs in sync.ledger.seen.items():
        if status is None or obs.job.status == status:
            created[job_id] = obs.job.created_at
        else:
            created.pop(job_id, None)
    return PositionIndex(created.values())


def _resolve_by_position(
    sync: _Sync, candidates: list[KnownJob], status: str | None = None
) -> list[KnownJob]:
    """Fetch the pages of one list (whole list, or one status slice) where the unresolved jobs
    must sit, clustered so one page serves every job within its hundred rows. Returns the jobs
    still unresolved (too deep for the cap, or never where estimated)."""
    key = list_key(status, None)
    margin = sync.settings.position_margin
    correction = 0
    pending = sync.unresolved(candidates)
    fetched: set[int] = set()
    for _ in range(sync.settings.max_position_rounds):
        if not pending:
            break
        index = _live_index(sync, status)
        positions = sorted((index.position(k.created_at) + correction, k.job_id) for k in pending)
        # A page asked for again shows the same rows: jobs not on it are in another list.
        offsets = [
            o for o in _cluster((p for p, _ in positions if p < REACH - margin), margin) if o not in fetched
        ]
        if not offsets:
            break
        fetched.update(offsets)
        deltas: list[int] = []
        for offset in offsets:
            page = sync.ledger.fetch(status=status, offset=offset)
            sync.coverage.add(key, page_span(page))
            sync.note("position_pages")
            for i, job in enumerate(page.jobs):
                deltas.append(offset + i - index.position(job.created_at))
        if deltas:
            correction = round(median(deltas))
        pending = sync.unresolved(pending)
    return pending


def _cluster(positions: Iterable[int], margin: int) -> list[int]:
    """Offsets of the fewest pages covering every position with a margin above and below.

    When a position's margin reaches back onto the previous page, the next page starts where
    that page ends (less the walk's OVERLAP, so their createdAt spans join): the rows above the
    position are in hand already, and starting later reaches further down. Starting each page
    at `position - margin` instead overlapped neighbours by up to 2 x margin rows, about a sixth
    of every page in the dense run of active jobs below the head at 40,000 jobs/day."""
    offsets: list[int] = []
    shown_to = -1  # the last row the pages so far show
    for p in sorted(positions):
        if p + margin <= shown_to:
            continue
        start = max(0, p - margin)
        if offsets and start <= shown_to + 1:
            start = shown_to + 1 - OVERLAP
        offset = min(start, MAX_OFFSET)
        offsets.append(offset)
        shown_to = offset + MAX_LIMIT - 1
    return offsets


def _resolve_deep(sync: _Sync, candidates: list[KnownJob]) -> None:
    """Jobs out of the whole list's reach: probe their targets, or go through the status slices
    when the targets are too many; probes then finish whatever the slices could not show."""
    deep = sync.unresolved(candidates)
    if not deep:
        return
    if _slices_are_cheaper(sync, deep):
        for status in (JobStatus.PENDING, JobStatus.IN_PROGRESS):
            if status not in sync.walked:
                sync.walk(status=status)
        deep = sync.unresolved(deep)
    # Before looking among finished jobs: queued jobs behind the queue's front cannot be there,
    # and the few kept as a hedge are probed directly.
    deep, hedge = _defer_behind_the_cap(sync, deep)
    if deep and _slices_are_cheaper(sync, deep):
        sync.note("deep_via_slices")
        for status in (JobStatus.DONE, JobStatus.ERROR):
            _resolve_by_position(sync, deep, status)
        deep = sync.unresolved(deep)
    by_target: dict[str, list[KnownJob]] = {}
    for k in [*deep, *hedge]:
        if k.target_id is not None:
            by_target.setdefault(k.target_id, []).append(k)
    for target in sorted(by_target):
        _probe(sync, target, by_target[target])


def _probe(sync: _Sync, target: str, wanted: list[KnownJob]) -> None:
    """Look for `wanted` in their target's list. A busy target (a folder synced all day) can
    hold hundreds of jobs: start where the newest wanted job should sit and stop below the oldest,
    rather than walking the whole list."""
    created = {
        k.job_id: k.created_at
        for k in sync.state.known.values()
        if k.target_id == target and k.status != JobStatus.KILLED
    }
    created.update(
        (o.job.id, o.job.created_at) for o in sync.ledger.seen.values() if o.job.target_id == target
    )
    newest = max(k.created_at for k in wanted)
    sync.walk(
        target_id=target,
        start_offset=PositionIndex(created.values()).position(newest) - OVERLAP,
        must_reach_above=newest,
        stop_before=min(k.created_at for k in wanted),
    )
    sync.note("target_probes")


def _slices_are_cheaper(sync: _Sync, deep: list[KnownJob]) -> bool:
    """Would the status slices settle these jobs in fewer requests than one probe per target?
    Jobs without a target can only be found through the slices."""
    if any(k.target_id is None for k in deep):
        return True
    targets = {k.target_id for k in deep}
    margin = sync.settings.position_margin
    cost = sum(_slice_pages(sync, s) for s in ACTIVE_STATUSES if s not in sync.walked)
    beyond: set[str | None] = set()
    for status in (JobStatus.DONE, JobStatus.ERROR):
        # A finished job may sit in either slice: count the pages of both, where they can reach,
        # and the probes still needed for jobs too deep for the DONE slice.
        index = _live_index(sync, status)
        positions = [(index.position(k.created_at), k) for k in deep]
        cost += max(1, len(_cluster((p for p, _ in positions if p < REACH), margin)))
        if status == JobStatus.DONE:
            beyond = {k.target_id for p, k in positions if p >= REACH}
    return cost + len(beyond) < len(targets)


def _defer_behind_the_cap(sync: _Sync, deep: list[KnownJob]) -> tuple[list[KnownJob], list[KnownJob]]:
    """A backlog deeper than the cap hides its oldest queued jobs from every list but their
    target's. Probing each would cost a request per job per poll for hours, for no news: a
    queued job stays queued until a worker takes it. Workers take jobs oldest first, so the
    newest job seen started (running, or finished in this sync) marks the front of the queue:
    hidden jobs older than the front have started (and, absent from the running slice, ended)
    and are probed; those behind the front are left, recorded as a gap, plus a few of the
    oldest as a hedge against a queue that is not strictly first-in first-out.

    Returns (jobs still to look for, hedge jobs to probe by target)."""
    hidden_floor = sync.cap_floor.get(JobStatus.PENDING)
    if hidden_floor is None:
        return deep, []
    started = [
        o.job.created_at
        for o in sync.ledger.seen.values()
        if o.job.status != JobStatus.PENDING and o.job.created_at < hidden_floor
    ]
    front = max(started, default=None)
    behind = sorted(
        (
            k
            for k in deep
            if k.status == JobStatus.PENDING
            and k.created_at < hidden_floor
            and (front is None or k.created_at > front)
        ),
        key=lambda k: k.created_at,
    )
    hedge, deferred = behind[: sync.settings.behind_cap_probes], behind[sync.settings.behind_cap_probes :]
    if deferred:
        sync.deferred.update(k.job_id for k in deferred)
        sync.gaps.append(Gap("known-active", "behind-cap", deferred[0].created_at, deferred[-1].created_at))
        sync.note("deferred_behind_cap", len(deferred))
    skip = {k.job_id for k in behind}
    return [k for k in deep if k.job_id not in skip], hedge


# --- absence --------------------------------------------------------------------------------


def _vanished(sync: _Sync) -> list[Vanished]:
    """Known jobs that are gone: proven absent while young (KILLED), or past the 24 h window."""
    now = sync.now
    out: list[Vanished] = []
    for k in sync.state.known.values():
        if k.job_id in sync.ledger.seen or k.status == JobStatus.KILLED:
            continue
        if sync.is_expired(k.created_at):
            out.append(Vanished(k.job_id, "EXPIRED", k.last_seen_at, now))
        elif k.status in ACTIVE_STATUSES and sync.coverage.proves_absent(k.created_at, k.target_id):
            out.append(Vanished(k.job_id, "KILLED", k.last_seen_at, now))
        # A terminal job absent from a proven range would be a vendor anomaly (DONE is final and
        # KILLED applies to queued or running jobs): keep its status rather than guess.
    return out


def _merge_gaps(gaps: list[Gap]) -> list[Gap]:
    seen: set[tuple[object, ...]] = set()
    out = []
    for g in gaps:
        key = (g.slice, g.reason, g.created_from, g.created_to)
        if key not in seen:
            seen.add(key)
            out.append(g)
    return out
