"""Configuration errors: `jobs-pipeline sync` exits non-zero with ONE line on stderr, and writes nothing.

Each mistake is tried on a fresh directory and on an existing archive; afterwards the directory
holds exactly the files it held before, and every table of both archive files is unchanged.
Exit codes (cli/errors.py): 1 the API or the network, 2 configuration, 3 the archive.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from benchmarks.soak import KEY, ArchiveState, archive_state, soak_twin, state_differences
from jobs_pipeline.api.client import JobsClient
from jobs_pipeline.archive import SCHEMA_VERSION, ArchivePaths
from jobs_pipeline.cli.main import app


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A twin, and a template archive made by one real sync against it."""
    template = tmp_path_factory.mktemp("template")
    with soak_twin(template / "archive.duckdb", jobs_per_day=300) as soak:
        soak.sync()
        yield soak.url, template


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    # The CLI's real backoff (0.5 s doubling, 6 attempts) is the retry tests' business; here only
    # the outcome of giving up matters.
    monkeypatch.setattr(JobsClient, "_backoff", lambda self, state: 0.0)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def listing(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


def run_cli(monkeypatch: pytest.MonkeyPatch, key: str | None, *args: str) -> Any:
    if key is None:
        monkeypatch.delenv("DEVANA_API_KEY", raising=False)
    else:
        monkeypatch.setenv("DEVANA_API_KEY", key)
    monkeypatch.delenv("DEVANA_API_URL", raising=False)
    monkeypatch.delenv("JOBS_PIPELINE_DB", raising=False)
    return CliRunner().invoke(app, ["sync", *args])


def assert_one_line_error(result: Any, code: int, fragment: str) -> None:
    assert result.exit_code == code, (result.exit_code, result.stderr, result.exception)
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert fragment in result.stderr
    assert "Traceback" not in result.output


# (case, key, base URL (None: the twin's), expected code, fragment of the message)
MISTAKES = [
    ("missing key", None, None, 2, "DEVANA_API_KEY is not set"),
    ("blank key", "   ", None, 2, "DEVANA_API_KEY is not set"),
    ("wrong key", "not-the-key", None, 1, "rejected the key (401)"),
    ("key with a space", "soak key", None, 2, "whitespace"),
    ("not http", KEY, "ftp://api.devana.ai", 2, "http(s) URL"),
    ("garbage URL", KEY, "not a url at all", 2, "http(s) URL"),
    ("unparsable URL", KEY, "http://[::1", 2, "not a valid URL"),
    ("URL with a query", KEY, "https://api.devana.ai/?key=1", 2, "query"),
    ("closed port", KEY, "closed", 1, "could not talk to the API"),
]


@pytest.mark.usefixtures("quick_retries")
@pytest.mark.parametrize("existing", [False, True], ids=["fresh", "existing"])
@pytest.mark.parametrize(("case", "key", "url", "code", "fragment"), MISTAKES, ids=[m[0] for m in MISTAKES])
def test_a_setting_mistake_is_one_line_and_writes_nothing(
    served: tuple[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    existing: bool,
    case: str,
    key: str | None,
    url: str | None,
    code: int,
    fragment: str,
) -> None:
    twin_url, template = served
    if existing:
        shutil.copytree(template, tmp_path, dirs_exist_ok=True)
    db = tmp_path / "archive.duckdb"
    before = archive_state(db) if existing else None
    files_before = listing(tmp_path)
    base_url = {None: twin_url, "closed": f"http://127.0.0.1:{closed_port()}"}.get(url, url)
    result = run_cli(monkeypatch, key, "--base-url", str(base_url), "--db", str(db))
    assert_one_line_error(result, code, fragment)
    if key and key.strip():
        assert key.strip() not in result.output  # a wrong key is still a key: never echoed
    assert listing(tmp_path) == files_before
    if before is not None:
        assert state_differences(before, archive_state(db)) == []


def test_a_db_path_that_is_a_directory(
    served: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "archive.duckdb").mkdir()
    result = run_cli(monkeypatch, KEY, "--base-url", served[0], "--db", str(tmp_path / "archive.duckdb"))
    assert_one_line_error(result, 3, "is a directory")
    assert listing(tmp_path) == ["archive.duckdb"]


def test_a_db_path_under_a_file(
    served: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "notes.txt").write_text("not a directory")
    result = run_cli(
        monkeypatch, KEY, "--base-url", served[0], "--db", str(tmp_path / "notes.txt" / "a.duckdb")
    )
    assert_one_line_error(result, 3, "not writable")
    assert listing(tmp_path) == ["notes.txt"]


def test_a_db_path_on_a_filesystem_nobody_may_write(
    served: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # /proc refuses new files even to root (a chmod would not stop root, who runs CI here).
    result = run_cli(monkeypatch, KEY, "--base-url", served[0], "--db", "/proc/jobs_archive.duckdb")
    assert_one_line_error(result, 3, "not writable")
    assert not Path("/proc/jobs_archive.duckdb").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through any permission bits")
def test_a_read_only_directory(
    served: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        result = run_cli(monkeypatch, KEY, "--base-url", served[0], "--db", str(locked / "a.duckdb"))
    finally:
        locked.chmod(0o755)
    assert_one_line_error(result, 3, "not writable")
    assert listing(locked) == []


def bump_schema(path: Path) -> None:
    conn = duckdb.connect(str(path))
    try:
        conn.execute(
            "INSERT INTO schema_version VALUES ('*', ?, now(), 'from a newer jobs_pipeline')",
            [SCHEMA_VERSION + 1],
        )
        conn.execute("CHECKPOINT")
    finally:
        conn.close()


@pytest.mark.parametrize("where", ["both copies", "published copy only"])
def test_an_archive_from_a_newer_schema_is_refused_untouched(
    served: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    shutil.copytree(served[1], tmp_path, dirs_exist_ok=True)
    db = tmp_path / "archive.duckdb"
    paths = ArchivePaths.for_db(db)
    bump_schema(paths.published)
    if where == "both copies":
        bump_schema(paths.store)
    else:
        shutil.rmtree(paths.writer_dir)  # e.g. an archive copied from another machine
    before: ArchiveState = archive_state(db)
    result = run_cli(monkeypatch, KEY, "--base-url", served[0], "--db", str(db))
    assert_one_line_error(result, 3, f"schema version {SCHEMA_VERSION + 1}")
    assert "newer release" in result.stderr
    assert state_differences(before, archive_state(db)) == []


@pytest.mark.parametrize(
    ("option", "value", "fragment"),
    [
        ("--budget", "0", "budget"),
        ("--rate-limit", "0", "rate limit"),
        ("--poll-interval", "inf", "poll interval"),
        ("--poll-interval", "nan", "poll interval"),
        ("--poll-interval", "-5", "poll interval"),
        ("--lock-timeout", "nan", "lock timeout"),
        ("--recheck-running-after", "0", "recheck delay"),
        ("--recheck-running-after", "inf", "recheck delay"),
    ],
)
def test_nonsense_numbers_are_refused_before_anything_is_written(
    served: tuple[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    option: str,
    value: str,
    fragment: str,
) -> None:
    result = run_cli(
        monkeypatch, KEY, "--base-url", served[0], "--db", str(tmp_path / "a.duckdb"), option, value
    )
    assert_one_line_error(result, 2, fragment)
    assert listing(tmp_path) == []
