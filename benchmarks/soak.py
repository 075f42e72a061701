"""Reliability soak: syncs killed with SIGKILL at random points, and syncs under fault storms.

    .venv/bin/python -m benchmarks.soak [--kill-runs 24] [--storm-syncs 60] [--fault-rate 0.3] [--seed 1]

Both soaks run the API twin on a stepped clock, served over HTTP on 127.0.0.1 by this process,
and score every sync against the twin's ground truth. They print a Markdown table (the one in
docs/reliability.md comes from here).

Kill soak: each run starts a sync in a CHILD process (a small `python -c` runner calling
`run_sync`, or the real `jobs-pipeline sync` command) and kills it with SIGKILL at a random
point: at the k-th API request, at a random instant, or a random moment after it enters a phase
(opening the store, applying, checkpointing, publishing, the copy, the rename). After each kill
the archive must open, its invariants must hold (`invariant_violations`), and the next sync, in
this process with a short lock timeout, must succeed (no stale lock). After the last run a clean
sync must leave nothing lost against the ground truth (`truth_violations`).

Storm soak: many syncs against a twin that faults `--fault-rate` of its responses (every kind
in FAULT_KINDS), plus, every fifth sync, a scripted storm longer than the client's retries. Each
sync either completes with data matching the ground truth, or fails with an ApiError and leaves
every table of both archive files, and the directory listing, exactly as they were.

The oracle (`archive_state`, `invariant_violations`, `truth_violations`) and the crash runner are
also what jobs_pipeline_tests/test_reliability_*.py use for their short versions.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from jobs_pipeline.api.client import JobsClient
from jobs_pipeline.api.errors import ApiError
from jobs_pipeline.archive import ArchivePaths, SyncSummary, open_for_analysis
from jobs_pipeline.sync import SyncConfig, run_sync
from jobs_pipeline.twin import FAULT_KINDS, FaultConfig, RequestRecord, SteppedClock, Twin, TwinConfig

KEY = "soak-key"
TENANT = "default"
TWIN_START = datetime(2026, 11, 1, 12, tzinfo=UTC)
REPO_ROOT = Path(__file__).resolve().parent.parent
RETENTION = timedelta(hours=24)
# Attempts after which the client gives up (JobsClient's max_attempts and MALFORMED_MAX_ATTEMPTS):
# a scripted storm this long is certain to fail the sync.
ATTEMPTS_TO_EXHAUST = {kind: 6 for kind in FAULT_KINDS} | {"invalid_json": 3}
PAGE_FAULT_KINDS = ("bad_record", "duplicate_ids", "huge_metadata", "odd_unicode")


# ===================================================================== the oracle: archive state


@dataclass(frozen=True)
class ArchiveState:
    """Everything a failed sync must leave as it was: file names, the published bytes, every row."""

    files: tuple[str, ...]
    published_sha256: str | None
    store_tables: dict[str, list[tuple[Any, ...]]] | None
    published_tables: dict[str, list[tuple[Any, ...]]] | None


def table_rows(conn: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (hot and main) of the connection's current database, and every row
    the analyst views show (sealed Parquet included), in a stable order."""
    relations = conn.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database() "
        "AND NOT internal UNION ALL SELECT schema_name, view_name FROM duckdb_views() "
        "WHERE database_name = current_database() AND NOT internal AND NOT temporary ORDER BY 1, 2"
    ).fetchall()
    return {
        (name if schema == "main" else f"{schema}.{name}"): sorted(
            conn.execute(f'SELECT * FROM "{schema}"."{name}"').fetchall(), key=repr
        )
        for schema, name in relations
    }


@contextlib.contextmanager
def open_store(db: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """Read-only connection on the writer's private store (a WAL left by a crash is replayed)."""
    conn = duckdb.connect(str(ArchivePaths.for_db(db).store), read_only=True)
    try:
        conn.execute("SET TimeZone = 'UTC'")
        yield conn
    finally:
        conn.close()


def archive_state(db: Path) -> ArchiveState:
    paths = ArchivePaths.for_db(db)
    files = tuple(
        sorted(str(p.relative_to(paths.directory)) for p in paths.directory.rglob("*") if p.is_file())
    )
    store_tables = None
    if paths.store.exists():
        with open_store(db) as conn:
            store_tables = table_rows(conn)
    published_sha = published_tables = None
    if paths.published.exists():
        published_sha = hashlib.sha256(paths.published.read_bytes()).hexdigest()
        with contextlib.closing(open_for_analysis(db)) as conn:
            published_tables = table_rows(conn)
    return ArchiveState(files, published_sha, store_tables, published_tables)


def state_differences(before: ArchiveState, after: ArchiveState) -> list[str]:
    """What changed between two states, table by table (empty: nothing)."""
    out = []
    if before.files != after.files:
        out.append(f"files changed: {sorted(set(before.files) ^ set(after.files))}")
    if before.published_sha256 != after.published_sha256:
        out.append("the published file's bytes changed")
    for label, old, new in (
        ("store", before.store_tables, after.store_tables),
        ("published", before.published_tables, after.published_tables),
    ):
        if (old is None) != (new is None):
            out.append(f"the {label} copy {'appeared' if old is None else 'disappeared'}")
            continue
        for table in sorted(set(old or {}) | set(new or {})):
            a, b = (old or {}).get(table), (new or {}).get(table)
            if a != b:
                out.append(f"{label}.{table}: {len(a or [])} rows before, {len(b or [])} after")
    return out


# ================================================================= the oracle: archive invariants

# Each query returns offending rows; the name says which invariant they break.
INVARIANTS: dict[str, str] = {
    "one jobs row per (tenant, job_id)": """
        SELECT tenant, job_id, count(*) FROM jobs GROUP BY ALL HAVING count(*) > 1""",
    "created_at <= started_at <= completed_at": """
        SELECT job_id, created_at, started_at, completed_at FROM jobs
        WHERE started_at < created_at OR completed_at < started_at OR completed_at < created_at""",
    "every job has a snapshot": """
        SELECT j.job_id FROM jobs j ANTI JOIN job_snapshots s USING (tenant, job_id)""",
    "every snapshot belongs to a job": """
        SELECT s.job_id FROM job_snapshots s ANTI JOIN jobs j USING (tenant, job_id)""",
    "the latest snapshot agrees with jobs (status, progress, updated_at, error)": """
        WITH latest AS (
            SELECT * FROM job_snapshots
            QUALIFY row_number() OVER (PARTITION BY tenant, job_id ORDER BY observed_at DESC, updated_at DESC) = 1)
        SELECT j.job_id, j.status, l.status FROM jobs j JOIN latest l USING (tenant, job_id)
        WHERE (NOT j.status_inferred AND j.status IS DISTINCT FROM l.status)
           OR j.progress IS DISTINCT FROM l.progress OR j.updated_at IS DISTINCT FROM l.updated_at
           OR j.error IS DISTINCT FROM l.error""",
    "first/last_seen_at bracket the snapshots": """
        SELECT j.job_id FROM jobs j JOIN job_snapshots s USING (tenant, job_id)
        GROUP BY j.tenant, j.job_id, j.first_seen_at, j.last_seen_at
        HAVING j.first_seen_at <> min(s.observed_at) OR j.last_seen_at < max(s.observed_at)""",
    "inferred status is KILLED": """
        SELECT job_id, status FROM jobs WHERE status_inferred AND status <> 'KILLED'""",
    "every row names an applied sync": """
        SELECT 'job_snapshots', sync_id FROM job_snapshots ANTI JOIN sync_runs USING (tenant, sync_id)
        UNION ALL SELECT 'job_status_changes', sync_id FROM job_status_changes ANTI JOIN sync_runs USING (tenant, sync_id)
        UNION ALL SELECT 'rejected_records', sync_id FROM rejected_records ANTI JOIN sync_runs USING (tenant, sync_id)
        UNION ALL SELECT 'jobs', last_sync_id FROM jobs j ANTI JOIN sync_runs s ON j.tenant = s.tenant AND j.last_sync_id = s.sync_id""",
    "status changes chain from creation to the current status": """
        WITH ordered AS (
            SELECT c.tenant, c.job_id, c.from_status, c.to_status,
                   lag(c.to_status) OVER w AS previous_to,
                   row_number() OVER w AS n,
                   row_number() OVER (PARTITION BY c.tenant, c.job_id ORDER BY r.observed_at DESC, c.step DESC) AS back
            FROM job_status_changes c JOIN sync_runs r USING (tenant, sync_id)
            WINDOW w AS (PARTITION BY c.tenant, c.job_id ORDER BY r.observed_at, c.step))
        SELECT o.job_id, o.from_status, o.to_status FROM ordered o
        WHERE (o.n = 1 AND o.from_status IS NOT NULL)
           OR (o.n > 1 AND o.from_status IS DISTINCT FROM o.previous_to)
        UNION ALL
        SELECT o.job_id, o.to_status, j.status FROM ordered o JOIN jobs j USING (tenant, job_id)
        WHERE o.back = 1 AND o.to_status <> j.status
        UNION ALL
        SELECT j.job_id, NULL, j.status FROM jobs j ANTI JOIN job_status_changes c USING (tenant, job_id)""",
    "rejects per sync match sync_runs.rejects": """
        SELECT r.sync_id, r.rejects, count(x.sync_id) FROM sync_runs r
        LEFT JOIN rejected_records x USING (tenant, sync_id)
        WHERE r.rejects IS NOT NULL GROUP BY ALL HAVING count(x.sync_id) <> r.rejects""",
}


def invariant_violations(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """The invariants every archive must satisfy at rest, whatever happened to the last sync."""
    tables = {
        name
        for (name,) in conn.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
            "UNION ALL SELECT view_name FROM duckdb_views() WHERE database_name = current_database()"
        ).fetchall()
    }
    out = []
    for name, sql in INVARIANTS.items():
        if "rejected_records" in sql and "rejected_records" not in tables:
            continue  # a schema version 1 archive (not upgraded yet) has no rejects to check
        rows = conn.execute(sql).fetchall()
        if rows:
            out.append(f"{name}: {len(rows)} offending rows, e.g. {rows[:3]}")
    return out


def archive_invariant_violations(db: Path) -> list[str]:
    """Invariants of both files (the published copy must open whenever it exists)."""
    paths = ArchivePaths.for_db(db)
    out = []
    if paths.store.exists():
        try:
            with open_store(db) as conn:
                out += [f"store: {v}" for v in invariant_violations(conn)]
        except duckdb.Error as exc:
            out.append(f"store does not open: {exc}")
    if paths.published.exists():
        try:
            with contextlib.closing(open_for_analysis(db)) as conn:
                out += [f"published: {v}" for v in invariant_violations(conn)]
        except Exception as exc:
            out.append(f"published copy does not open: {exc}")
    return out


# ====================================================================== the oracle: ground truth


def parse_ts(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


@dataclass(frozen=True)
class TruthJob:
    id: str
    user_id: str
    target_id: str
    type: str
    created: datetime
    started: datetime | None
    completed: datetime | None
    final_status: str
    history: tuple[tuple[str, datetime], ...]

    def status_at(self, instant: datetime) -> str | None:
        status = None
        for name, at in self.history:
            if at <= instant:
                status = name
        return status

    def visible_at(self, instant: datetime) -> bool:
        status = self.status_at(instant)
        return status not in (None, "KILLED") and instant - RETENTION < self.created <= instant


def load_truth(twin: Twin) -> dict[str, TruthJob]:
    out = {}
    for raw in twin.ground_truth():
        created = parse_ts(raw["createdAt"])
        assert created is not None
        out[raw["id"]] = TruthJob(
            id=raw["id"],
            user_id=raw["userId"],
            target_id=raw["targetId"],
            type=raw["type"],
            created=created,
            started=parse_ts(raw["startedAt"]),
            completed=parse_ts(raw["completedAt"]),
            final_status=raw["finalStatus"],
            history=tuple((h["status"], parse_ts(h["at"])) for h in raw["history"]),  # type: ignore[misc]
        )
    return out


def truth_violations(
    conn: duckdb.DuckDBPyConnection,
    truth: dict[str, TruthJob],
    *,
    tenant: str = TENANT,
    not_from_twin: frozenset[str] = frozenset(),
) -> list[str]:
    """Where the archive disagrees with the ground truth. Checked:
    - every archived job exists, with the true user, target, type and timestamps;
    - its status is the one it held when last seen (an inferred KILLED: it was killed);
    - no KILLED inference was ever corrected (none was ever wrong);
    - every job visible at the instant of a sync that reported complete coverage is archived.
    `not_from_twin`: ids archived before this twin existed (e.g. an upgraded archive's), skipped.
    """
    out: list[str] = []
    rows = conn.execute(
        "SELECT job_id, user_id, target_id, job_type, status, status_inferred, created_at, started_at, "
        "completed_at, last_seen_at FROM jobs WHERE tenant = ?",
        [tenant],
    ).fetchall()
    archived = set()
    for job_id, user, target, job_type, status, inferred, created, started, completed, last_seen in rows:
        archived.add(job_id)
        if job_id in not_from_twin:
            continue
        true = truth.get(job_id)
        if true is None:
            out.append(f"{job_id}: archived but unknown to the twin")
            continue
        if (user, target, job_type, created) != (true.user_id, true.target_id, true.type, true.created):
            out.append(f"{job_id}: identity {(user, target, job_type, created)} != truth")
        if started is not None and started != true.started:
            out.append(f"{job_id}: started_at {started} != {true.started}")
        if completed is not None and completed != true.completed:
            out.append(f"{job_id}: completed_at {completed} != {true.completed}")
        if inferred:
            if true.final_status != "KILLED":
                out.append(f"{job_id}: inferred KILLED but it is {true.final_status}")
        elif status != true.status_at(last_seen):
            out.append(f"{job_id}: {status} when last seen at {last_seen}, truth {true.status_at(last_seen)}")
    corrections = conn.execute(
        "SELECT count(*) FROM job_status_changes WHERE tenant = ? AND source = 'correction'", [tenant]
    ).fetchall()[0][0]
    if corrections:
        out.append(f"{corrections} inferred KILLED were later corrected (they were wrong)")
    complete_instants = [
        when
        for (when,) in conn.execute(
            "SELECT observed_at FROM sync_runs WHERE tenant = ? AND coverage_complete", [tenant]
        ).fetchall()
    ]
    for instant in complete_instants:
        missing = [j.id for j in truth.values() if j.visible_at(instant) and j.id not in archived]
        if missing:
            out.append(
                f"{len(missing)} jobs visible at {instant} (complete sync) are not archived: {missing[:3]}"
            )
    return out


def archive_truth_violations(db: Path, truth: dict[str, TruthJob]) -> list[str]:
    with contextlib.closing(open_for_analysis(db)) as conn:
        return truth_violations(conn, truth)


# ===================================================================== the oracle: read-only

ALLOWED_QUERY = frozenset({"type", "targetId", "limit", "offset"})
QUERYABLE = frozenset({"PENDING", "IN_PROGRESS", "DONE", "ERROR"})


def read_only_violations(requests: list[RequestRecord]) -> list[str]:
    """Requests that are not a well-formed `GET /v1/jobs` inside the API's caps."""
    out = []
    for r in requests:
        problems = []
        if r.method != "GET" or r.path != "/v1/jobs":
            problems.append(f"{r.method} {r.path}")
        if set(r.query) - ALLOWED_QUERY:
            problems.append(f"query {sorted(set(r.query) - ALLOWED_QUERY)}")
        if "type" in r.query and r.query["type"] not in QUERYABLE:
            problems.append(f"type={r.query['type']} (the parameter filters by status)")
        limit, offset = r.query.get("limit", "25"), r.query.get("offset", "0")
        if not (limit.isdigit() and 1 <= int(limit) <= 100 and offset.isdigit() and int(offset) <= 1000):
            problems.append(f"limit={limit} offset={offset}")
        if problems:
            out.append(f"request {r.index}: {', '.join(problems)}")
    return out


# ========================================================================= a twin and its syncs


@dataclass
class SoakTwin:
    """A twin on a stepped clock, served on 127.0.0.1, with a quick-retry client and an archive."""

    twin: Twin
    clock: SteppedClock
    url: str
    db: Path
    client: JobsClient
    lock_timeout: float = 5.0
    budget: int = 500

    def sync(self) -> SyncSummary:
        config = SyncConfig(
            base_url=self.url,
            api_key=KEY,
            db_path=self.db,
            budget=self.budget,
            lock_timeout=self.lock_timeout,
        )
        return run_sync(config, source=self.client)

    def advance(self, **delta: float) -> None:
        self.clock.advance(timedelta(**delta))

    def truth(self) -> dict[str, TruthJob]:
        return load_truth(self.twin)


def quick_client(url: str, *, timeout: float = 1.0) -> JobsClient:
    """The real client with millisecond backoff and no client-side throttling (the twin is unthrottled)."""
    return JobsClient(url, KEY, backoff_base=0.01, backoff_max=0.05, timeout=timeout, rate_limit=100_000)


@contextlib.contextmanager
def soak_twin(
    db: Path,
    *,
    jobs_per_day: float = 800,
    seed: int = 7,
    faults: FaultConfig | None = None,
    client_timeout: float = 1.0,
    **config: Any,
) -> Iterator[SoakTwin]:
    clock = SteppedClock(start=TWIN_START)
    config.setdefault("rate_limit", None)
    config.setdefault("api_keys", (KEY,))
    twin = Twin(
        TwinConfig(jobs_per_day=jobs_per_day, seed=seed, faults=faults or FaultConfig(), **config),
        clock=clock,
    )
    with twin.serve() as url:
        client = quick_client(url, timeout=client_timeout)
        try:
            yield SoakTwin(twin, clock, url, db, client)
        finally:
            client.close()


# ============================================================================== the crash runner

# Runs one sync and prints "PHASE <name>" as it enters each phase, so the parent can kill it there.
# The wrappers only print: the code path is the production one.
RUNNER = r"""
import json, sys
from pathlib import Path

args = json.loads(sys.argv[1])
import jobs_pipeline.archive.publish as publish_module
import jobs_pipeline.archive.sealing as sealing_module
import jobs_pipeline.archive.writer as writer_module
import jobs_pipeline.sync as sync_module
from jobs_pipeline.api.client import JobsClient
from jobs_pipeline.sync import SyncConfig, run_sync


def mark(phase):
    sys.stdout.write(f"PHASE {phase}\n")
    sys.stdout.flush()


def traced(owner, name, before, after=None):
    original = getattr(owner, name)

    def wrapper(*a, **kw):
        mark(before)
        result = original(*a, **kw)
        if after:
            mark(after)
        return result

    setattr(owner, name, wrapper)


traced(writer_module, "_open_store", "open")
traced(sync_module, "capture", "fetch")
traced(sync_module, "apply_capture", "apply", "applied")
traced(writer_module, "publish_or_warn", "publish")
traced(publish_module.shutil, "copyfile", "copy")
traced(publish_module.os, "replace", "replace")
traced(sealing_module, "_seal_table_day", "seal")
traced(sealing_module, "refresh_views", "views")

client = JobsClient(args["url"], args["key"], backoff_base=0.01, backoff_max=0.05, timeout=2.0, rate_limit=100_000)
config = SyncConfig(base_url=args["url"], api_key=args["key"], db_path=Path(args["db"]), budget=args["budget"],
                    lock_timeout=args["lock_timeout"])
summary = run_sync(config, source=client)
mark("done")
print(summary.one_line())
"""

# Where a run may be killed: at its k-th API request, at a random instant, or a random moment after
# it enters one of the runner's phases. "cli-*" runs use the real `jobs-pipeline sync` command.
MARKED_PHASES = ("open", "apply", "seal", "views", "applied", "publish", "copy", "replace")
KILL_POINTS = ("request", "instant", *MARKED_PHASES, "cli-request", "cli-instant")
# Longest random delay after entering a phase (seconds): about the phase's own length.
PHASE_DELAY = {
    "open": 0.08,
    "apply": 0.15,
    "seal": 0.02,
    "views": 0.005,
    "applied": 0.05,
    "publish": 0.03,
    "copy": 0.01,
    "replace": 0.002,
}


@dataclass(frozen=True)
class KillPlan:
    point: str  # one of KILL_POINTS
    delay: float = 0.0  # seconds after the phase begins (or after start, for "instant")
    request: int = 0  # for "request" points: kill while serving the child's request number `request`


@dataclass
class CrashOutcome:
    plan: KillPlan
    killed: bool  # False: the sync finished before the kill came
    phases: list[str]  # phases the child announced, in order
    requests: int  # API requests the child sent
    exit_code: int | None
    stderr: str = ""

    @property
    def reached(self) -> str:
        return self.phases[-1] if self.phases else "start"


def random_plan(rng: random.Random, *, point: str | None = None) -> KillPlan:
    point = point or rng.choice(KILL_POINTS)
    if point in ("request", "cli-request"):
        return KillPlan(point, request=rng.randint(0, 2))
    if point in ("instant", "cli-instant"):
        return KillPlan(point, delay=rng.uniform(0.3, 3.0))
    return KillPlan(point, delay=rng.uniform(0.0, PHASE_DELAY[point]))


def crash_run(soak: SoakTwin, plan: KillPlan, *, timeout: float = 90.0) -> CrashOutcome:
    """Start a sync in a child process and SIGKILL it as `plan` says; wait for it to be gone."""
    cli = plan.point.startswith("cli-")
    env = dict(os.environ)
    if cli:
        env["DEVANA_API_KEY"] = KEY
        options = {
            "--base-url": soak.url,
            "--db": str(soak.db),
            "--rate-limit": "100000",
            "--budget": str(soak.budget),
            "--lock-timeout": str(soak.lock_timeout),
        }
        command = [sys.executable, "-m", "jobs_pipeline.cli.main", "sync", *itertools.chain(*options.items())]
    else:
        arguments = {
            "url": soak.url,
            "key": KEY,
            "db": str(soak.db),
            "budget": soak.budget,
            "lock_timeout": soak.lock_timeout,
        }
        command = [sys.executable, "-c", RUNNER, json.dumps(arguments)]
    requests = itertools.count()
    served = [0]
    killed = threading.Event()
    child: subprocess.Popen[str]

    def kill() -> None:
        if child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGKILL)
                killed.set()

    def on_request(index: int) -> None:
        number = next(requests)
        served[0] = number + 1
        if plan.point.endswith("request") and number == plan.request:
            kill()

    timers: list[threading.Timer] = []

    def kill_after(delay: float) -> None:
        timer = threading.Timer(delay, kill)
        timers.append(timer)
        timer.start()

    phases: list[str] = []
    with tempfile.TemporaryFile(mode="w+") as stderr:
        soak.twin.before_request = on_request
        try:
            child = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=REPO_ROOT, env=env
            )
            watchdog = threading.Timer(timeout, kill)
            watchdog.start()
            if plan.point.endswith("instant"):
                kill_after(plan.delay)
            assert child.stdout is not None
            for line in child.stdout:
                if line.startswith("PHASE "):
                    phase = line.split()[1]
                    phases.append(phase)
                    if phase == plan.point:
                        kill() if plan.delay <= 0 else kill_after(plan.delay)
            exit_code = child.wait()
            watchdog.cancel()
        finally:
            soak.twin.before_request = None
            for timer in timers:
                timer.cancel()
        stderr.seek(0)
        error_text = stderr.read()
    if exit_code == -signal.SIGKILL and not killed.is_set():
        raise RuntimeError(f"the child was killed by someone else or hung past {timeout} s")
    return CrashOutcome(plan, killed.is_set(), phases, served[0], exit_code, error_text)


def leftover_files(db: Path) -> list[str]:
    """Files that should not outlive a successful sync (temp copies of a crashed publish or seed)."""
    paths = ArchivePaths.for_db(db)
    expected = {paths.published, paths.store, paths.store_wal, paths.lock_file}
    if paths.published.exists():
        # suppress: an archive from before sealing has no manifest
        with contextlib.closing(open_for_analysis(db)) as conn, contextlib.suppress(duckdb.CatalogException):
            expected |= {
                paths.sealed_root / path
                for (path,) in conn.execute("SELECT path FROM sealed_partitions").fetchall()
            }
    return sorted(
        str(p.relative_to(paths.directory))
        for p in paths.directory.rglob("*")
        if p.is_file() and p not in expected
    )


# ================================================================================== kill soak


@dataclass
class KillRow:
    runs: int = 0
    killed: int = 0
    reached: Counter[str] = field(default_factory=Counter)
    archive_ok: int = 0
    recovered: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass
class KillReport:
    rows: dict[str, KillRow]
    final_problems: list[str]
    jobs_archived: int
    jobs_in_truth: int
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.final_problems and not any(r.problems for r in self.rows.values())


def kill_one(soak: SoakTwin, plan: KillPlan, row: KillRow, rng: random.Random) -> CrashOutcome:
    """One run: kill a child sync, check the archive at rest, recover with a sync in this process."""
    outcome = crash_run(soak, plan)
    row.runs += 1
    row.killed += outcome.killed
    row.reached[outcome.reached] += 1
    if not outcome.killed and outcome.exit_code != 0:
        row.problems.append(f"{plan}: the child failed on its own: {outcome.stderr.strip()[-300:]}")
    problems = archive_invariant_violations(soak.db)
    if problems:
        row.problems.append(f"{plan} (reached {outcome.reached}): {problems}")
    else:
        row.archive_ok += 1
    # The next sync must not wait for a lock nobody holds any more: a 2 s lock timeout.
    started, saved, soak.lock_timeout = time.monotonic(), soak.lock_timeout, 2.0
    try:
        soak.sync()
    except Exception as exc:
        row.problems.append(f"{plan}: the next sync failed after {time.monotonic() - started:.1f} s: {exc!r}")
        return outcome
    finally:
        soak.lock_timeout = saved
    after = archive_invariant_violations(soak.db) + archive_truth_violations(soak.db, soak.truth())
    leftovers = leftover_files(soak.db)
    if after or leftovers:
        row.problems.append(f"{plan}: after recovery: {after} leftovers={leftovers}")
    else:
        row.recovered += 1
    move_on(soak, rng, kill_chance=0.5)
    return outcome


def move_on(soak: SoakTwin, rng: random.Random, *, kill_chance: float) -> None:
    """Let the world move on before the next sync: a batch of new jobs (syncs of several pages),
    some finish, now and then one is killed. Nothing happens at the last sync's own instant: a job
    created or killed then, after the sync ran, would contradict what the sync saw at that instant."""
    soak.advance(seconds=1)
    add_arrivals(soak, rng, rng.randint(50, 250))
    soak.advance(minutes=rng.randint(2, 15))
    active = [j for j in soak.twin.visible_jobs() if j["status"] in ("PENDING", "IN_PROGRESS")]
    if active and rng.random() < kill_chance:
        soak.twin.kill(rng.choice(active)["id"])


def kill_soak(runs: int, *, seed: int, workdir: Path, jobs_per_day: float = 800) -> KillReport:
    started = time.monotonic()
    rng = random.Random(seed)
    points = [KILL_POINTS[i % len(KILL_POINTS)] for i in range(runs)]
    rng.shuffle(points)
    rows = {point: KillRow() for point in KILL_POINTS}
    rows["first sync"] = KillRow()
    with soak_twin(workdir / "archive.duckdb", jobs_per_day=jobs_per_day, seed=seed) as soak:
        # Two runs kill the very first sync of a fresh archive (a half-made archive must not stick).
        for _ in range(2):
            plan = random_plan(rng, point=rng.choice(("request", "instant", "apply", "publish")))
            kill_one(soak, plan, rows["first sync"], rng)
            for path in sorted(soak.db.parent.glob("*")):
                if path.is_dir():
                    for inner in path.iterdir():
                        inner.unlink()
                    path.rmdir()
                else:
                    path.unlink()
        soak.sync()
        move_on(soak, rng, kill_chance=0.5)
        for point in points:
            kill_one(soak, random_plan(rng, point=point), rows[point], rng)
        soak.advance(minutes=30)
        soak.sync()
        truth = soak.truth()
        final = archive_invariant_violations(soak.db) + archive_truth_violations(soak.db, truth)
        final += final_state_violations(soak.db, truth)
        with contextlib.closing(open_for_analysis(soak.db)) as conn:
            archived = conn.execute("SELECT count(*) FROM jobs").fetchall()[0][0]
    return KillReport(
        {k: v for k, v in rows.items() if v.runs}, final, archived, len(truth), time.monotonic() - started
    )


def final_state_violations(db: Path, truth: dict[str, TruthJob]) -> list[str]:
    """After a final clean sync: every job the API shows now is archived, with its current status."""
    with contextlib.closing(open_for_analysis(db)) as conn:
        ((now,),) = conn.execute("SELECT max(observed_at) FROM sync_runs").fetchall()
        archived = dict(conn.execute("SELECT job_id, status FROM jobs").fetchall())
    out = []
    visible = [j for j in truth.values() if j.visible_at(now)]
    missing = [j.id for j in visible if j.id not in archived]
    wrong = [
        (j.id, archived[j.id], j.status_at(now))
        for j in visible
        if archived.get(j.id, j.status_at(now)) != j.status_at(now)
    ]
    if missing:
        out.append(f"{len(missing)} of {len(visible)} jobs visible now are not archived: {missing[:3]}")
    if wrong:
        out.append(f"{len(wrong)} visible jobs have a stale status: {wrong[:3]}")
    return out


# ================================================================================= storm soak


@dataclass
class StormRow:
    injected: int = 0  # responses carrying this fault
    syncs: int = 0  # syncs that met it
    completed: int = 0  # ... and completed with data matching the ground truth
    failed_clean: int = 0  # ... and failed with an ApiError, the archive unchanged
    wrong: int = 0  # ... anything else: wrong data, a changed archive, another exception


@dataclass
class StormReport:
    rows: dict[str, StormRow]
    syncs: int
    completed: int
    failed_clean: int
    # Completed syncs: rejected_records rows they kept, and the record-damaging faults
    # (bad_record, duplicate_ids) they met. Each such fault damages one row of a page of two or more.
    rejects_kept: int
    damaging_faults: int
    problems: list[str]
    final_problems: list[str]
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.problems and not self.final_problems


@dataclass
class StormVerdict:
    verdict: str  # "completed", "failed_clean", or what went wrong
    rejects_kept: int = 0
    damaging_faults: int = 0


def storm_sync(soak: SoakTwin, rows: dict[str, StormRow]) -> str:
    """One sync under whatever faults the twin draws: "completed", "failed_clean", or a problem."""
    return judged_storm_sync(soak, rows).verdict


def judged_storm_sync(soak: SoakTwin, rows: dict[str, StormRow]) -> StormVerdict:
    before = archive_state(soak.db) if soak.db.exists() else None
    first_request = len(soak.twin.requests)
    try:
        summary = soak.sync()
        error: Exception | None = None
    except ApiError as exc:
        error = exc
    met = Counter(r.fault for r in soak.twin.requests[first_request:] if r.fault)
    outcome = StormVerdict("")
    if error is None:
        problems = archive_invariant_violations(soak.db) + archive_truth_violations(soak.db, soak.truth())
        with contextlib.closing(open_for_analysis(soak.db)) as conn:
            kept = conn.execute(
                "SELECT count(*) FROM rejected_records WHERE sync_id = ?", [summary.sync_id]
            ).fetchall()[0][0]
        if kept != summary.rejects:
            problems.append(f"{summary.rejects} rejects reported, {kept} kept")
        outcome = StormVerdict(
            "completed" if not problems else f"wrong data: {problems}",
            rejects_kept=kept,
            damaging_faults=met["bad_record"] + met["duplicate_ids"],
        )
    else:
        message = str(error)
        if before is not None:
            changes = state_differences(before, archive_state(soak.db))
        else:
            changes = [str(p) for p in soak.db.parent.iterdir()]  # a failed first sync leaves nothing
        if changes:
            outcome.verdict = f"failed but changed the archive: {changes}"
        elif "\n" in message or KEY in message:
            outcome.verdict = f"unclear error: {message!r}"
        else:
            outcome.verdict = "failed_clean"
    for kind, count in met.items():
        row = rows[kind]
        row.injected += count
        row.syncs += 1
        if outcome.verdict == "completed":
            row.completed += 1
        elif outcome.verdict == "failed_clean":
            row.failed_clean += 1
        else:
            row.wrong += 1
    return outcome


def add_arrivals(soak: SoakTwin, rng: random.Random, count: int) -> None:
    """A batch of new jobs (on top of the twin's own workload): syncs of several pages."""
    for _ in range(count):
        soak.twin.add_job(
            rng.choice(("EXTRACTION", "EMBEDDING", "GENERATION", "TRANSCRIPTION")),
            queue_seconds=rng.uniform(0, 120),
            run_seconds=rng.uniform(5, 900),
            outcome=rng.choice(("DONE", "DONE", "DONE", "ERROR")),
        )


def storm_soak(syncs: int, *, rate: float, seed: int, workdir: Path) -> StormReport:
    started = time.monotonic()
    rng = random.Random(seed)
    rows = {kind: StormRow() for kind in FAULT_KINDS}
    faults = FaultConfig(rate=rate, timeout_seconds=0.6, retry_after_seconds=1, huge_metadata_bytes=200_000)
    problems: list[str] = []
    outcomes: Counter[str] = Counter()
    rejects_kept = damaging = 0
    db = workdir / "archive.duckdb"
    with soak_twin(
        db, jobs_per_day=800, seed=seed, faults=faults, client_timeout=0.3, retry_after_format="mixed"
    ) as soak:
        for number in range(syncs):
            move_on(soak, rng, kill_chance=0.3)
            if number % 5 == 4:
                # A storm longer than the client's patience, from the sync's first or second request.
                kind = rng.choice([k for k in FAULT_KINDS if k not in PAGE_FAULT_KINDS])
                at = len(soak.twin.requests) + rng.randint(0, 1)
                soak.twin.before_request = lambda index, kind=kind, at=at: (
                    soak.twin.faults.fail_next(ATTEMPTS_TO_EXHAUST[kind], kind) if index == at else None
                )
            try:
                judged = judged_storm_sync(soak, rows)
            finally:
                soak.twin.before_request = None
                soak.twin.faults.clear()
            rejects_kept += judged.rejects_kept
            damaging += judged.damaging_faults
            ok = judged.verdict in ("completed", "failed_clean")
            outcomes[judged.verdict if ok else "problem"] += 1
            if not ok:
                problems.append(f"sync {number}: {judged.verdict}")
        # The storm ends: a clean sync must leave nothing lost.
        soak.twin.faults.configure(rate=0.0)
        soak.advance(minutes=30)
        soak.sync()
        truth = soak.truth()
        final = archive_invariant_violations(db) + archive_truth_violations(db, truth)
        final += final_state_violations(db, truth)
    return StormReport(
        rows,
        syncs,
        outcomes["completed"],
        outcomes["failed_clean"],
        rejects_kept,
        damaging,
        problems,
        final,
        time.monotonic() - started,
    )


# =================================================================================== reporting


def render(kills: KillReport | None, storm: StormReport | None) -> str:
    lines: list[str] = []
    if kills is not None:
        lines += [
            f"### kill -9 soak: {sum(r.runs for r in kills.rows.values())} runs in {kills.seconds:.0f} s",
            "",
            "| kill point | runs | killed (else finished first) | phase reached when killed | archive opens, invariants hold | next sync recovers | data lost |",
            "|---|---:|---:|---|---:|---:|---|",
        ]
        for point, row in kills.rows.items():
            reached = ", ".join(f"{name} {n}" for name, n in sorted(row.reached.items()))
            lines.append(
                f"| {point} | {row.runs} | {row.killed} | {reached} | {row.archive_ok}/{row.runs} "
                f"| {row.recovered}/{row.runs} | {'none' if not row.problems else 'SEE PROBLEMS'} |"
            )
        lines += [
            "",
            f"Final clean sync: {kills.jobs_archived} jobs archived, {kills.jobs_in_truth} in the twin's "
            f"ground truth; lost or wrong: {'none' if not kills.final_problems else kills.final_problems}.",
            "",
        ]
        for row in kills.rows.values():
            lines += [f"- PROBLEM: {p}" for p in row.problems]
    if storm is not None:
        lines += [
            f"### fault storm soak: {storm.syncs} syncs, {storm.completed} completed, "
            f"{storm.failed_clean} failed cleanly, in {storm.seconds:.0f} s",
            "",
            "| fault | injected (responses) | syncs that met it | completed, data correct | failed cleanly, archive unchanged | wrong or lost |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for kind, met in storm.rows.items():
            lines.append(
                f"| {kind} | {met.injected} | {met.syncs} | {met.completed} | {met.failed_clean} | {met.wrong} |"
            )
        lines += [
            "",
            f"Completed syncs kept {storm.rejects_kept} rejected_records rows for {storm.damaging_faults} "
            "record-damaging faults (bad_record, duplicate_ids; one damaged row per page of two or more rows).",
            "",
            f"After the storm, a clean sync: lost or wrong: "
            f"{'none' if not storm.final_problems else storm.final_problems}.",
            "",
        ]
        lines += [f"- PROBLEM: {p}" for p in storm.problems]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kill-runs", type=int, default=24, help="kill -9 runs (0: skip)")
    parser.add_argument("--storm-syncs", type=int, default=60, help="syncs under the fault storm (0: skip)")
    parser.add_argument("--fault-rate", type=float, default=0.3, help="share of responses faulted")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, help="also write the Markdown report here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        work = Path(tmp)
        kills = storm = None
        if args.kill_runs:
            (work / "kill").mkdir()
            kills = kill_soak(args.kill_runs, seed=args.seed, workdir=work / "kill")
        if args.storm_syncs:
            (work / "storm").mkdir()
            storm = storm_soak(args.storm_syncs, rate=args.fault_rate, seed=args.seed, workdir=work / "storm")
    report = render(kills, storm)
    print(report)
    if args.out:
        args.out.write_text(report + "\n", encoding="utf-8")
    return 0 if all(r is None or r.ok for r in (kills, storm)) else 1


if __name__ == "__main__":
    sys.exit(main())
