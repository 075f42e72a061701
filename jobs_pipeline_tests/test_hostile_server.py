"""A server that lies must not corrupt the archive (issue 13), end to end over real HTTP.

Every case starts from a good archive (one honest sync), makes the server in `hostile_server.py`
misbehave, runs the real CLI in a subprocess, and checks its exit code, its one-line message and
that every table of the writer's store holds exactly what it held before (row count and a hash of
every row).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from jobs_pipeline.archive.paths import ArchivePaths
from jobs_pipeline_tests.hostile_server import ESCAPES, HostileApi, serve_hostile

KEY = "sk-hostile-test-0123456789abcdef"
CLI = str(Path(sys.executable).parent / "jobs-pipeline")


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEVANA_", "JOBS_PIPELINE_"))}
    env["DEVANA_API_KEY"] = KEY
    env["COLUMNS"] = "300"  # wide enough that Rich never wraps a cell in the middle
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)


def sync(api: HostileApi, db: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli("sync", "--base-url", api.url, "--db", str(db), "--lock-timeout", "5", *extra)


def fingerprint(db: Path) -> dict[str, tuple[int, int]]:
    """(rows, order-free hash of every row) of every table of the writer's private store."""
    with duckdb.connect(str(ArchivePaths.for_db(db).store), read_only=True) as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'"
        ).fetchall()
        result = {}
        for schema, name in tables:
            row = conn.execute(
                f'SELECT count(*), coalesce(sum(hash(t)::HUGEINT), 0) FROM "{schema}"."{name}" AS t'
            ).fetchone()
            assert row is not None
            result[f"{schema}.{name}"] = (int(row[0]), int(row[1]))
        return result


def assert_one_line_error(done: subprocess.CompletedProcess[str], code: int, fragment: str) -> None:
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and fragment in lines[0], lines[0]
    assert KEY not in done.stderr + done.stdout


@pytest.fixture
def hostile(tmp_path: Path) -> Iterator[tuple[HostileApi, Path]]:
    db = tmp_path / "archive.duckdb"
    with serve_hostile(HostileApi()) as api:
        first = sync(api, db)
        assert first.returncode == 0, first.stderr
        yield api, db


CASES = [
    # (mode, extra CLI arguments, exit code, fragment of the one-line message)
    ("date_future", (), 1, "ahead of this machine's"),
    ("date_past", (), 1, "behind this machine's"),
    # With the local-clock comparison off (a twin on simulated time), the archive's own last
    # server time still refuses a clock that went back.
    ("date_past", ("--max-clock-skew", "0"), 1, "behind the archive's last server time"),
    ("huge", (), 1, "larger than the 33,554,432-byte cap"),
    ("dribble", ("--deadline", "3"), 1, "did not finish within the sync's deadline of 3 s"),
    ("retry_after_far", (), 1, "asks to wait more than a year"),
]


@pytest.mark.parametrize(("mode", "extra", "code", "fragment"), CASES, ids=[f"{c[0]}{c[1]}" for c in CASES])
def test_a_lying_server_fails_the_sync_in_one_line_and_writes_nothing(
    hostile: tuple[HostileApi, Path], mode: str, extra: tuple[str, ...], code: int, fragment: str
) -> None:
    api, db = hostile
    before = fingerprint(db)
    api.mode = mode
    api.bytes_sent = 0
    done = sync(api, db, *extra)
    assert_one_line_error(done, code, fragment)
    assert fingerprint(db) == before
    if mode == "huge":
        # Cut off at the cap while streaming (plus what the sockets had buffered), never retried.
        assert api.bytes_sent < 64 * 1024 * 1024
    # The archive is unhurt and unlocked: an honest sync right after works.
    api.mode = "good"
    again = sync(api, db)
    assert again.returncode == 0, again.stderr
    with duckdb.connect(str(db), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM jobs WHERE vanished_at IS NOT NULL").fetchall() == [(0,)]
        years = conn.execute("SELECT DISTINCT year(observed_at) FROM sync_runs").fetchall()
    assert {y for (y,) in years} <= {time.gmtime().tm_year, time.gmtime().tm_year - 1}


def test_known_jobs_with_other_immutable_values_are_rejected_not_changed(
    hostile: tuple[HostileApi, Path],
) -> None:
    api, db = hostile
    with duckdb.connect(str(db), read_only=True) as conn:
        identity = "SELECT job_id, created_at, job_type, target_id FROM jobs ORDER BY job_id"
        before = conn.execute(identity).fetchall()
    api.mode = "immutable"
    done = sync(api, db, "--json")
    assert done.returncode == 0, done.stderr
    with duckdb.connect(str(db), read_only=True) as conn:
        assert conn.execute(identity).fetchall() == before
        rejected = conn.execute("SELECT job_id, reason FROM rejected_records ORDER BY job_id").fetchall()
    assert [job_id for job_id, _ in rejected] == ["job-0000", "job-0001", "job-0002"]
    assert [reason.split(" ")[0] for _, reason in rejected] == ["createdAt", "type", "targetId"]
    assert '"rejects": 3' in done.stdout


def test_plain_http_to_another_host_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    db = tmp_path / "archive.duckdb"
    done = run_cli("sync", "--base-url", "http://api.devana.example", "--db", str(db))
    assert_one_line_error(done, 2, "refusing to send the API key in clear text")
    assert list(tmp_path.iterdir()) == []


def test_terminal_output_never_carries_the_servers_escape_sequences(
    hostile: tuple[HostileApi, Path], tmp_path: Path
) -> None:
    api, db = hostile
    api.mode = "escape"
    assert sync(api, db).returncode == 0
    with duckdb.connect(str(db), read_only=True) as conn:  # the archive keeps the API's bytes
        stored = conn.execute(
            "SELECT count(*) FROM jobs WHERE job_type = ?", [f"EXTRACTION{ESCAPES}"]
        ).fetchall()
    assert stored == [(5,)]
    watched = run_cli("watch", "--once", "--base-url", api.url)
    queried = run_cli("query", "--db", str(db), "SELECT DISTINCT job_type FROM jobs ORDER BY 1")
    report = tmp_path / "report.html"
    reported = run_cli("report", "--db", str(db), "--out", str(report))
    for done in (watched, queried, reported):
        assert done.returncode == 0, done.stderr
        assert "\x1b" not in done.stdout + done.stderr
    assert "EXTRACTION\\x1b[2J" in watched.stdout
    assert "EXTRACTION\\x1b[2J" in queried.stdout
    assert "\x1b" not in report.read_text(encoding="utf-8")


def test_a_sync_killed_mid_download_leaves_the_archive_as_it_was(hostile: tuple[HostileApi, Path]) -> None:
    api, db = hostile
    before = fingerprint(db)
    api.mode = "dribble"
    seen = len(api.requests)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEVANA_", "JOBS_PIPELINE_"))}
    env["DEVANA_API_KEY"] = KEY
    process = subprocess.Popen(
        [CLI, "sync", "--base-url", api.url, "--db", str(db)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Killed once it holds the lock and is mid-way through a response.
        for _ in range(600):
            if len(api.requests) > seen and api.bytes_sent > 0:
                break
            time.sleep(0.05)
        assert len(api.requests) > seen
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    api.mode = "good"
    assert fingerprint(db) == before
    again = sync(api, db)  # the kernel released the flock with the process
    assert again.returncode == 0, again.stderr


@pytest.mark.parametrize("damage", ["truncated", "random"])
def test_a_damaged_archive_is_refused_in_one_line_and_left_alone(
    hostile: tuple[HostileApi, Path], damage: str
) -> None:
    api, db = hostile
    store = ArchivePaths.for_db(db).store
    content = store.read_bytes()
    damaged = content[: len(content) // 3] if damage == "truncated" else os.urandom(len(content))
    store.write_bytes(damaged)
    published = db.read_bytes()
    requests = len(api.requests)
    done = sync(api, db)
    assert_one_line_error(done, 3, "")
    assert store.read_bytes() == damaged  # nothing "repaired" it away
    assert db.read_bytes() == published
    assert len(api.requests) == requests  # refused before asking the API anything


DISK_FULL_SCRIPT = r"""
import json, os, shutil, subprocess, sys
src, mnt, url, cli, key = sys.argv[1:6]
sys.path.insert(0, os.getcwd())
from jobs_pipeline_tests.test_hostile_server import fingerprint
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", mnt], check=True)
shutil.copytree(src, mnt, dirs_exist_ok=True)
db = os.path.join(mnt, "archive.duckdb")
usage = shutil.disk_usage(mnt)
assert usage.total <= 64 * 1024 * 1024, "not the small tmpfs: refusing to fill this disk"
free = usage.free
with open(os.path.join(mnt, "filler"), "wb") as filler:
    filler.write(b"\0" * max(0, free - 96 * 1024))  # leave 96 KiB: less than the sync must write
before = fingerprint(db)
env = {"DEVANA_API_KEY": key, "PATH": os.environ["PATH"]}
done = subprocess.run([cli, "sync", "--base-url", url, "--db", db], env=env, capture_output=True, text=True)
after = fingerprint(db)
os.remove(os.path.join(mnt, "filler"))
again = subprocess.run([cli, "sync", "--base-url", url, "--db", db], env=env, capture_output=True, text=True)
print(json.dumps({"rc": done.returncode, "stderr": done.stderr, "same": before == after, "again": again.returncode, "again_err": again.stderr}))
"""


def test_a_full_disk_fails_the_sync_in_one_line_and_keeps_the_archive(
    hostile: tuple[HostileApi, Path], tmp_path: Path
) -> None:
    """On a real 32 MiB tmpfs (in a private mount namespace: root only), filled to 96 KiB free."""
    import json
    import shutil

    api, db = hostile
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("mounting a tmpfs needs root and unshare")
    api.add_jobs(3000)  # a sync that must write far more than the space left
    mnt = tmp_path / "small"
    mnt.mkdir()
    done = subprocess.run(
        [
            "unshare",
            "-m",
            "--propagation",
            "private",
            sys.executable,
            "-c",
            DISK_FULL_SCRIPT,
            str(db.parent),
            str(mnt),
            api.url,
            CLI,
            KEY,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=Path(__file__).parent.parent,
    )
    if done.returncode != 0 and "mount" in done.stderr:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip().splitlines()[-1]}")
    outcome = json.loads(done.stdout)
    lines = outcome["stderr"].strip().splitlines()
    assert outcome["rc"] == 3, outcome
    assert len(lines) == 1 and "No space left on device" in lines[0], lines
    assert outcome["same"]
    assert outcome["again"] == 0, outcome["again_err"]
