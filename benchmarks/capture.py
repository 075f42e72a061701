"""Capture benchmark: our archiver and a naive connector, scored against the twin's ground truth.

    .venv/bin/python -m benchmarks.capture [--hours 6] [--poll-minutes 10] [--loads 900,6000,40000,burst,kills]

Loads: 900, 6000 and 40000 jobs/day; "burst" = 6000 plus two 1,500-job batch imports within a
minute each; "kills" = 6000 plus KILLS_PER_POLL scripted kills of queued or running jobs per poll.
Each load runs the twin on a stepped clock (26 h of history, 3 % injected faults), syncs every
`--poll-minutes` of twin time for `--hours`, end to end over HTTP into a real DuckDB archive, then
compares the archive with the twin's ground truth. The naive baseline, in the same run against a
twin of the same seed, walks the unfiltered list to the cap at every poll and keeps what it saw.

Scores (steady state = jobs created after the first sync; backfill = jobs already in the 24 h
window at the first sync, scored apart because past the cap some are unreachable by any client):
- jobs: share of observable jobs (visible at one poll instant at least) in the archive;
- final: share whose archived status equals the true status at the last poll;
- states: share of (job, status) pairs held at some poll instant that the archive recorded;
- killed: share of observable jobs killed a poll or more before the end inferred KILLED;
- exact ts: share of archived jobs whose createdAt/startedAt/completedAt equal the truth's;
- req/bound: requests (HTTP attempts, retries included) over the syncs after the first, divided
  by the oracle bound sum(max(1, ceil(jobs changed since the last poll / 100)));
- 429s: rate-limit answers received (injected ones included).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jobs_pipeline.api.client import JobsClient
from jobs_pipeline.archive import open_for_analysis
from jobs_pipeline.sync import SyncConfig, run_sync
from jobs_pipeline.twin import Burst, FaultConfig, SteppedClock, Twin, TwinConfig

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
KEY = "bench-key"
# The twin's limiter counts real time; a stepped clock runs a simulated hour in seconds, so the
# window shrinks in proportion and the client's limiter is given the same window.
RATE_LIMIT = 100
RATE_WINDOW_SECONDS = 0.5
RESULTS = Path(__file__).parent / "results"


def parse_ts(value: str | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass
class TruthJob:
    id: str
    target: str | None
    created: datetime
    started: datetime | None
    completed: datetime | None
    history: list[tuple[str, datetime]]

    def status_at(self, t: datetime) -> str | None:
        status = None
        for s, at in self.history:
            if at <= t:
                status = s
        return status

    def visible_at(self, t: datetime) -> bool:
        s = self.status_at(t)
        return s is not None and s != "KILLED" and self.created > t - timedelta(hours=24)


def load_truth(raw: list[dict[str, Any]]) -> dict[str, TruthJob]:
    out = {}
    for r in raw:
        out[r["id"]] = TruthJob(
            id=r["id"],
            target=r.get("targetId"),
            created=parse_ts(r["createdAt"]),  # type: ignore[arg-type]
            started=parse_ts(r.get("startedAt")),
            completed=parse_ts(r.get("completedAt")),
            history=[(h["status"], parse_ts(h["at"])) for h in r["history"]],  # type: ignore[misc]
        )
    return out


@dataclass
class Archived:
    """What a client ended up knowing: status per job, statuses ever recorded, timestamps."""

    status: dict[str, str] = field(default_factory=dict)
    states: dict[str, set[str]] = field(default_factory=dict)
    timestamps: dict[str, tuple[datetime | None, datetime | None, datetime | None]] = field(
        default_factory=dict
    )


@dataclass
class Run:
    name: str
    polls: list[datetime]
    requests_after_first: int
    responses_429: int
    archived: Archived
    seconds: float
    deep_victims: set[str] = field(default_factory=set)  # scripted kills deeper than the head page
    # Requests by planner purpose over the syncs after the first (sync_runs.plan_notes), ours only.
    spend: dict[str, int] = field(default_factory=dict)


def scenario(load: str, seed: int) -> TwinConfig:
    faults = FaultConfig(rate=0.03, seed=seed)
    if load == "burst":
        bursts = (
            Burst(
                at=T0 + timedelta(hours=1, minutes=3), count=1500, job_type="EXTRACTION", within_seconds=60
            ),
            Burst(
                at=T0 + timedelta(hours=3, minutes=41), count=1500, job_type="EXTRACTION", within_seconds=60
            ),
        )
        return TwinConfig(
            jobs_per_day=6000,
            seed=seed,
            history_hours=26,
            api_keys=(KEY,),
            rate_limit=RATE_LIMIT,
            rate_window_seconds=RATE_WINDOW_SECONDS,
            faults=faults,
            bursts=bursts,
        )
    if load == "kills":
        load = "6000"  # the same workload, plus KILLS_PER_POLL scripted kills (see advance_poll)
    return TwinConfig(
        jobs_per_day=int(load),
        seed=seed,
        history_hours=26,
        api_keys=(KEY,),
        rate_limit=RATE_LIMIT,
        rate_window_seconds=RATE_WINDOW_SECONDS,
        faults=faults,
    )


# The twin kills ~1 % of jobs, most of them seconds after creation, before any poll: too few
# observable kills to measure inference. The "kills" load adds KILLS_PER_POLL per poll interval,
# half-way between polls, among the jobs queued or running at the poll just made (so a client could
# know them): half among those deeper than the head page (row >= 100 of the whole list), where
# absence is hardest to prove, half among the rest.
KILLS_PER_POLL = 4
HEAD_ROWS = 100


def advance_poll(
    twin: Twin, clock: SteppedClock, poll: timedelta, kills: int, rng: random.Random, deep_victims: set[str]
) -> None:
    """Move the twin to the next poll, killing `kills` jobs half-way (the same ones for every
    client: same seed, same twin state). Deep victims are added to `deep_victims`."""
    if kills:
        rows = {j["id"]: row for row, j in enumerate(twin.visible_jobs())}
        active = sorted(
            j["id"] for status in ("PENDING", "IN_PROGRESS") for j in twin.visible_jobs(status=status)
        )
        deep = [i for i in active if rows[i] >= HEAD_ROWS]
        shallow = [i for i in active if rows[i] < HEAD_ROWS]
        chosen_deep = rng.sample(deep, min(kills // 2, len(deep)))
        chosen = chosen_deep + rng.sample(shallow, min(kills - len(chosen_deep), len(shallow)))
    clock.advance(poll / 2)
    if kills:
        for job_id in chosen:
            if twin.kill(job_id) and job_id in chosen_deep:
                deep_victims.add(job_id)
    clock.advance(poll - poll / 2)


@dataclass
class _Polled:
    """What driving one client through the polls measured (the archive aside)."""

    twin: Twin
    polls: list[datetime]
    requests_after_first: int
    responses_429: int
    seconds: float
    deep_victims: set[str]

    def run(self, name: str, archived: Archived, spend: dict[str, int] | None = None) -> Run:
        return Run(
            name,
            self.polls,
            self.requests_after_first,
            self.responses_429,
            archived,
            self.seconds,
            self.deep_victims,
            spend or {},
        )


def _poll_through(
    cfg: TwinConfig,
    hours: float,
    poll: timedelta,
    kills: int,
    poll_once: Callable[[str, JobsClient], Callable[[], None]],
) -> _Polled:
    """Serve a fresh twin of `cfg` and call one client's poll at every poll instant, the same
    clock steps and scripted kills for every client. `poll_once(url, client)` returns the poll."""
    clock = SteppedClock(start=T0)
    twin = Twin(cfg, clock=clock)
    polls: list[datetime] = []
    kill_rng = random.Random(cfg.seed)
    deep_victims: set[str] = set()
    started = time.perf_counter()
    with twin.serve() as url:
        client = JobsClient(
            url, KEY, rate_limit=RATE_LIMIT, rate_window_seconds=RATE_WINDOW_SECONDS, timeout=2.0
        )
        one_poll = poll_once(url, client)
        first_requests = 0
        for i in range(int(hours * 3600 / poll.total_seconds()) + 1):
            polls.append(clock.now())
            one_poll()
            if i == 0:
                first_requests = client.requests_sent
            advance_poll(twin, clock, poll, kills, kill_rng, deep_victims)
        requests_after_first = client.requests_sent - first_requests
        responses_429 = client.responses_429
        client.close()
    return _Polled(
        twin, polls, requests_after_first, responses_429, time.perf_counter() - started, deep_victims
    )


def run_ours(
    cfg: TwinConfig,
    hours: float,
    poll: timedelta,
    workdir: Path,
    recheck: timedelta | None = None,
    kills: int = 0,
) -> tuple[Run, Twin]:
    db = workdir / "ours.duckdb"

    def sync_each_poll(url: str, client: JobsClient) -> Callable[[], None]:
        config = SyncConfig(
            base_url=url,
            api_key=KEY,
            db_path=db,
            poll_interval_seconds=poll.total_seconds(),
            rate_limit=RATE_LIMIT,
            budget=math.floor(RATE_LIMIT * poll.total_seconds() / 60 * 0.9),
            recheck_running_after_seconds=recheck.total_seconds() if recheck else None,
        )

        def one_poll() -> None:
            run_sync(config, source=client)

        return one_poll

    polled = _poll_through(cfg, hours, poll, kills, sync_each_poll)
    archived = Archived()
    with open_for_analysis(db) as conn:
        for job_id, status, created, started_at, completed in conn.execute(
            "SELECT job_id, status, created_at, started_at, completed_at FROM jobs"
        ).fetchall():
            archived.status[job_id] = status
            archived.timestamps[job_id] = (created, started_at, completed)
        for job_id, status in conn.execute("SELECT DISTINCT job_id, status FROM job_snapshots").fetchall():
            archived.states.setdefault(job_id, set()).add(status)
        notes = [
            n for (n,) in conn.execute("SELECT plan_notes FROM sync_runs ORDER BY observed_at").fetchall()
        ]
    return polled.run("ours", archived, spend_by_purpose(notes[1:])), polled.twin


def spend_by_purpose(plan_notes: list[str | None]) -> dict[str, int]:
    """Requests by planner purpose (`requests.<purpose>` in sync_runs.plan_notes), summed."""
    total: dict[str, int] = {}
    for text in plan_notes:
        for key, n in json.loads(text or "{}").items():
            if key.startswith("requests."):
                purpose = key.removeprefix("requests.")
                total[purpose] = total.get(purpose, 0) + int(n)
    return total


def run_naive(cfg: TwinConfig, hours: float, poll: timedelta, kills: int = 0) -> Run:
    """The generic connector: walk the unfiltered list to the cap each poll, keep what it saw."""
    archived = Archived()

    def walk_to_the_cap(url: str, client: JobsClient) -> Callable[[], None]:
        def one_poll() -> None:
            for page in client.iter_slice(page_size=100):
                for job in page.jobs:
                    archived.status[job.id] = job.status
                    archived.states.setdefault(job.id, set()).add(job.status)
                    archived.timestamps[job.id] = (job.created_at, job.started_at, job.completed_at)

        return one_poll

    return _poll_through(cfg, hours, poll, kills, walk_to_the_cap).run("naive", archived)


def oracle_bound(truth: dict[str, TruthJob], polls: list[datetime]) -> int:
    total = 0
    for before, now in itertools.pairwise(polls):
        changed = sum(
            1 for j in truth.values() if j.created <= now and j.status_at(before) != j.status_at(now)
        )
        total += max(1, math.ceil(changed / 100))
    return total


ACTIVE = ("PENDING", "IN_PROGRESS")
WINDOW = 100  # rows one request returns


@dataclass(frozen=True)
class _Placed:
    """A job as the lists show it at one instant: its row in the whole list and in its status slice."""

    row: int
    status: str
    slice_row: int
    target: str | None

    def shares_a_window_with(self, other: _Placed) -> bool:
        return (
            abs(self.row - other.row) < WINDOW
            or (self.status == other.status and abs(self.slice_row - other.slice_row) < WINDOW)
            or (self.target is not None and self.target == other.target)
        )


def freshness_bound(truth: dict[str, TruthJob], polls: list[datetime]) -> int:
    """A lower bound on the requests of ANY client that knows every job's status AT every poll.

    The issue's bound counts only the jobs that changed; but no response says which jobs changed,
    so a client that must know each job's status at each poll instant has to be shown, at that
    poll, every job created since the last poll and every job that was queued or running then
    (any of them may have moved; a running job absent from the running slice may be DONE, ERROR
    or KILLED, and only being shown tells which). One request shows at most 100 consecutive rows
    of one list (the whole list, a status slice, or a target's list). Per poll the bound is the
    larger of ceil(jobs to show / 100) and the size of a set of those jobs no two of which can
    share a window of any list (found greedily; any such set is a valid bound). Caps and drift
    are ignored and KILLED jobs need no row (one page can prove many absent): both only lower it.

    The premise is freshness. A client that learns a status later (the exact startedAt and
    completedAt still date it) is not held to this bound: the economy setting, and jobs queued
    behind a cap that the archiver knowingly leaves for later (gap "behind-cap").
    """
    total = 0
    for before, now in itertools.pairwise(polls):
        visible = sorted(
            (j for j in truth.values() if j.visible_at(now)), key=lambda j: (j.created, j.id), reverse=True
        )
        slice_rows: dict[str, int] = {}
        must_show: list[_Placed] = []
        for row, j in enumerate(visible):
            status = j.status_at(now)
            assert status is not None
            slice_row = slice_rows.get(status, 0)
            slice_rows[status] = slice_row + 1
            if j.created > before or j.status_at(before) in ACTIVE:
                must_show.append(_Placed(row, status, slice_row, j.target))
        apart: list[_Placed] = []
        for placed in must_show:
            if not any(placed.shares_a_window_with(other) for other in apart):
                apart.append(placed)
        total += max(1, math.ceil(len(must_show) / WINDOW), len(apart))
    return total


def reachable_sets(truth: dict[str, TruthJob], polls: list[datetime]) -> dict[datetime, set[str]]:
    """Per poll instant, the jobs some query could return without knowing their target: within
    the first 1,100 rows of the whole list or of their status slice (createdAt descending)."""
    out: dict[datetime, set[str]] = {}
    for t in polls:
        visible = sorted(
            (j for j in truth.values() if j.visible_at(t)), key=lambda j: (j.created, j.id), reverse=True
        )
        reach = {j.id for j in visible[:1100]}
        by_status: dict[str | None, list[TruthJob]] = {}
        for j in visible:
            by_status.setdefault(j.status_at(t), []).append(j)
        for jobs in by_status.values():
            reach.update(j.id for j in jobs[:1100])
        out[t] = reach
    return out


def score(
    run: Run,
    truth: dict[str, TruthJob],
    bound: int,
    reachable: dict[datetime, set[str]],
    fresh_bound: int,
) -> dict[str, dict[str, float]]:
    first, last = run.polls[0], run.polls[-1]
    out: dict[str, dict[str, float]] = {}
    for part, chosen in (
        ("steady", lambda j: j.created > first),
        ("backfill", lambda j: j.created <= first and j.visible_at(first)),
    ):
        out[part] = _score_part(run, truth, chosen, last, reachable)
    out["steady"]["req/bound"] = run.requests_after_first / bound if bound else float("nan")
    out["steady"]["requests"] = run.requests_after_first
    out["steady"]["bound"] = bound
    out["steady"]["req/fresh"] = run.requests_after_first / fresh_bound if fresh_bound else float("nan")
    out["steady"]["fresh_bound"] = fresh_bound
    out["steady"]["429s"] = run.responses_429
    out["steady"]["seconds"] = run.seconds
    return out


def _score_part(
    run: Run,
    truth: dict[str, TruthJob],
    chosen: Callable[[TruthJob], bool],
    last: datetime,
    reachable: dict[datetime, set[str]],
) -> dict[str, float]:
    # Jobs some client could have seen at a poll instant. Jobs visible to the API but hidden past
    # every list's cap for the whole run (a backlog deeper than 1,100 whose targets are new) are
    # counted apart: no query reaches them.
    everything = [j for j in truth.values() if chosen(j) and any(j.visible_at(t) for t in run.polls)]
    observable = [j for j in everything if any(j.id in reachable[t] for t in run.polls)]
    a = run.archived
    captured = [j for j in observable if j.id in a.status]
    final_right = sum(1 for j in observable if a.status.get(j.id) == _final_status(j, last))
    state_pairs = [(j.id, j.status_at(t)) for j in observable for t in run.polls if j.id in reachable[t]]
    distinct_pairs = set(state_pairs)
    states_right = sum(1 for job_id, s in distinct_pairs if s in a.states.get(job_id, set()))
    killed = [
        j
        for j in observable
        if j.status_at(last) == "KILLED"
        and _killed_at(j) is not None
        and _killed_at(j) <= last  # type: ignore[operator]
        and any(t > _killed_at(j) for t in run.polls)  # type: ignore[operator]
    ]
    killed_right = sum(1 for j in killed if a.status.get(j.id) == "KILLED")
    killed_deep = [j for j in killed if j.id in run.deep_victims]
    exact = sum(1 for j in captured if _exact(j, a.status[j.id], a.timestamps[j.id]))
    return {
        "observable": len(observable),
        "never_reachable": len(everything) - len(observable),
        "captured_of_all_visible": _share(sum(1 for j in everything if j.id in a.status), len(everything)),
        "jobs": _share(len(captured), len(observable)),
        "final": _share(final_right, len(observable)),
        "states": _share(states_right, len(distinct_pairs)),
        "killed": _share(killed_right, len(killed)),
        "killed_n": len(killed),
        "killed_deep_n": len(killed_deep),
        "killed_deep_right": sum(1 for j in killed_deep if a.status.get(j.id) == "KILLED"),
        "exact_ts": _share(exact, len(captured)),
    }


def _final_status(j: TruthJob, last: datetime) -> str | None:
    status = j.status_at(last)
    # A job past the 24 h window keeps its last observable status in any archive.
    if j.created <= last - timedelta(hours=24) and status == "KILLED":
        return "KILLED"
    return status


def _killed_at(j: TruthJob) -> datetime | None:
    return next((at for s, at in j.history if s == "KILLED"), None)


def _exact(j: TruthJob, status: str, stamps: tuple[datetime | None, ...]) -> bool:
    """Every timestamp the archive holds equals the truth, and none is missing that its status
    implies (a job archived PENDING or KILLED may lack startedAt; only DONE/ERROR need completedAt)."""
    created, started, completed = stamps
    if created != j.created:
        return False
    if started is not None and started != j.started:
        return False
    if started is None and status in ("IN_PROGRESS", "DONE", "ERROR") and j.started is not None:
        return False
    if completed is not None and completed != j.completed:
        return False
    return not (completed is None and status in ("DONE", "ERROR"))


def _share(n: int, d: int) -> float:
    return n / d if d else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hours", type=float, default=6.0)
    parser.add_argument("--poll-minutes", type=float, default=10.0)
    parser.add_argument("--loads", default="900,6000,40000,burst,kills")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--recheck-running-minutes",
        type=float,
        default=None,
        help="economy setting of our archiver (default: off, every sync looks for every running job)",
    )
    parser.add_argument("--out", type=Path, default=None, help="default: results/capture[-economy-N-min].md")
    args = parser.parse_args()
    if args.out is None:
        economy = f"-economy-{args.recheck_running_minutes:g}-min" if args.recheck_running_minutes else ""
        args.out = RESULTS / f"capture{economy}.md"
    poll = timedelta(minutes=args.poll_minutes)
    rows = []
    for load in args.loads.split(","):
        cfg = scenario(load, args.seed)
        with tempfile.TemporaryDirectory() as tmp:
            recheck = (
                timedelta(minutes=args.recheck_running_minutes) if args.recheck_running_minutes else None
            )
            kills = KILLS_PER_POLL if load == "kills" else 0
            ours, twin = run_ours(cfg, args.hours, poll, Path(tmp), recheck, kills)
        truth = load_truth(twin.ground_truth())
        naive = run_naive(cfg, args.hours, poll, kills)
        bound = oracle_bound(truth, ours.polls)
        fresh = freshness_bound(truth, ours.polls)
        reachable = reachable_sets(truth, ours.polls)
        for run in (ours, naive):
            s: dict[str, Any] = score(run, truth, bound, reachable, fresh)
            s["spend"] = run.spend
            rows.append((load, run.name, s))
            print(load, run.name, s, flush=True)
    table = render(rows, args)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table)


def render(rows: list[tuple[str, str, dict[str, Any]]], args: argparse.Namespace) -> str:
    head = (
        f"Capture benchmark: {args.hours:g} h of {args.poll_minutes:g}-minute polls, 3 % faults, seed {args.seed}.\n"
        "Steady state = jobs created after the first sync; backfill = jobs in the window at the first sync.\n"
        + (
            f"Our archiver in economy: running jobs out of the head's reach looked for once unseen "
            f"{args.recheck_running_minutes:g} min.\n"
            if args.recheck_running_minutes
            else "Our archiver with its defaults (every running job looked for at every sync).\n"
        )
        + "Bounds: the issue's = sum over polls of max(1, ceil(jobs changed / 100)); the freshness bound = what "
        "any client must spend to be shown, at each poll, every new job and every job queued or running at "
        "the previous one (see freshness_bound).\n\n"
        "Shares are over jobs some query could reach at a poll instant; 'never reachable' jobs were visible to\n"
        "the API but past every list's cap for the whole run (their share captured is given apart).\n\n"
        "| load | client | jobs | final | states | killed (n) | exact ts | req / bound (req, bound) "
        "| req / fresh bound (bound) | 429s | never reachable (captured) | backfill jobs | backfill final "
        "| seconds |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for load, name, s in rows:
        st, bf = s["steady"], s["backfill"]
        lines.append(
            f"| {load} | {name} | {st['jobs']:.4f} | {st['final']:.4f} | {st['states']:.4f} "
            f"| {st['killed']:.3f} ({int(st['killed_n'])}{_deep(st)}) | {st['exact_ts']:.4f} "
            f"| {st['req/bound']:.2f} ({int(st['requests'])}, {int(st['bound'])}) "
            f"| {_vs_fresh(st, args, name)} | {int(st['429s'])} "
            f"| {int(st['never_reachable'])} ({st['captured_of_all_visible']:.4f} of all) "
            f"| {bf['jobs']:.4f} of {int(bf['observable'])} | {bf['final']:.4f} | {st['seconds']:.0f} |"
        )
    spends = [(load, s["spend"]) for load, name, s in rows if name == "ours"]
    purposes = sorted({p for _, spend in spends for p in spend})
    by_purpose = (
        "\nWhere our requests went (syncs after the first, sync_runs.plan_notes requests.<purpose>; "
        "planner requests, HTTP retries not included):\n\n"
        f"| load | {' | '.join(purposes)} |\n|---|{'---|' * len(purposes)}\n"
        + "".join(
            f"| {load} | {' | '.join(str(spend.get(p, 0)) for p in purposes)} |\n" for load, spend in spends
        )
    )
    return head + "\n".join(lines) + "\n" + (by_purpose if purposes else "")


def _vs_fresh(st: dict[str, float], args: argparse.Namespace, client: str) -> str:
    # The freshness bound holds clients that know every status at each poll; economy does not.
    if args.recheck_running_minutes and client == "ours":
        return f"n/a: not fresh ({int(st['fresh_bound'])})"
    return f"{st['req/fresh']:.2f} ({int(st['fresh_bound'])})"


def _deep(st: dict[str, float]) -> str:
    n = int(st.get("killed_deep_n", 0))
    return f"; deep {int(st['killed_deep_right'])}/{n}" if n else ""


if __name__ == "__main__":
    main()
